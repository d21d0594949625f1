//! From a [`Document`] to a validated [`Topology`]: every check that can be made without
//! running, each failing with the place and a hint.
//!
//! Checks, in order: the clock; per module, a known `kind`, known parameters of the right
//! type and range, required parameters present, no repeated names; per link, endpoints
//! `instance.port` that exist, an output feeding an input, matching transaction types, each
//! port on at most one link, depth/latency/width in range; every non-optional port
//! connected; no loop made only of zero-latency links.

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use super::error::{InputError, Origin, suggestion};
use super::raw::{Document, Located, RawLinkDoc};
use super::registry;
use super::{LinkInst, ModuleInst, PortRef, Topology};
use crate::component::{
    Dir, MAX_CYCLES, ModuleSpec, ParamDefault, Params, STATIC_MW_MAX, quote_list,
};
use crate::kernel::Clock;

/// Default link depth, in transactions.
pub const DEFAULT_DEPTH: u32 = 2;

fn clock_of(v: &Located<f64>, key: &str) -> Result<Clock, InputError> {
    Clock::from_mhz(v.value).ok_or_else(|| {
        InputError::new(
            format!("`{key}` = {} is not a valid clock frequency", v.value),
            v.origin.clone(),
            key,
        )
        .with_hint(format!(
            "give a frequency in MHz from {} (1 kHz) to {} (100 GHz), e.g. `200`",
            Clock::MIN_MHZ,
            Clock::MAX_MHZ
        ))
    })
}

/// Validates a document.
pub fn validate(doc: &Document) -> Result<Topology, InputError> {
    let clock = clock_of(&doc.clock_mhz, "clock_mhz")?;
    let mut modules: Vec<ModuleInst> = Vec::with_capacity(doc.modules.len());
    for m in &doc.modules {
        if let Some(first) = modules.iter().find(|x| x.name == m.name.value) {
            return Err(InputError::new(
                format!("module `{}` is defined twice", m.name.value),
                m.name.origin.clone(),
                format!("modules.{}", m.name.value),
            )
            .with_hint(format!(
                "the first definition is at {}; rename one",
                first.origin
            )));
        }
        modules.push(module(m, clock)?);
    }
    if modules.is_empty() {
        return Err(InputError::new(
            "the topology has no modules",
            doc.modules_origin.clone(),
            "modules",
        )
        .with_hint("add at least one entry under `modules:` (see `stasim models` for kinds)"));
    }
    let mut links = Vec::with_capacity(doc.links.len());
    for (i, l) in doc.links.iter().enumerate() {
        let inst = link(i, l, &modules, &links)?;
        links.push(inst);
    }
    check_connected(&modules, &links)?;
    let mut graph = DiGraph::new();
    let nodes: Vec<_> = (0..modules.len()).map(|i| graph.add_node(i)).collect();
    for (i, l) in links.iter().enumerate() {
        graph.add_edge(nodes[l.from.module], nodes[l.to.module], i);
    }
    check_zero_latency_loops(&modules, &links)?;
    Ok(Topology {
        name: doc
            .name
            .as_ref()
            .map_or_else(|| stem(&doc.path), |n| n.value.clone()),
        path: doc.path.clone(),
        clock,
        modules,
        links,
        graph,
        workload: doc.workload.clone(),
        energy: energy(doc)?,
    })
}

fn energy(doc: &Document) -> Result<crate::energy::EnergyTable, InputError> {
    let mut t = crate::energy::EnergyTable::default();
    for (i, (k, v)) in doc.energy.iter().enumerate() {
        if let Some((first, _)) = doc.energy[..i].iter().find(|(f, _)| f.value == k.value) {
            return Err(InputError::new(
                format!("energy entry `{}` is given twice", k.value),
                k.origin.clone(),
                format!("energy.{}", k.value),
            )
            .with_hint(format!("the first is at {}; keep one", first.origin)));
        }
        t.set(&k.value, v.value).map_err(|msg| {
            InputError::new(
                format!("bad energy entry `{}`", k.value),
                k.origin.clone(),
                format!("energy.{}", k.value),
            )
            .with_hint(msg)
        })?;
    }
    Ok(t)
}

fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_owned(), |s| s.to_string_lossy().into_owned())
}

fn module(m: &super::raw::ModuleDoc, default_clock: Clock) -> Result<ModuleInst, InputError> {
    let name = &m.name.value;
    let Some((kind_key, kind_val)) = m.entries.iter().find(|(k, _)| k.value == "kind") else {
        return Err(InputError::new(
            format!("module `{name}` has no `kind`"),
            m.name.origin.clone(),
            format!("modules.{name}"),
        )
        .with_hint(format!(
            "add `kind:` with one of {}",
            quote_list(&registry::kind_names())
        )));
    };
    if let Some((again, _)) = m.entries.iter().filter(|(k, _)| k.value == "kind").nth(1) {
        return Err(InputError::new(
            format!("`kind` of `{name}` is given twice"),
            again.origin.clone(),
            format!("modules.{name}.kind"),
        )
        .with_hint(format!(
            "the first is at {}; a module has one kind",
            kind_key.origin
        )));
    }
    let kind_name = kind_val.value.to_string();
    let Some(spec) = registry::kind(&kind_name) else {
        return Err(InputError::new(
            format!("unknown module kind `{kind_name}` for `{name}`"),
            kind_val.origin.clone(),
            format!("modules.{name}.{}", kind_key.value),
        )
        .with_hint(suggestion(
            &kind_name,
            &registry::kind_names(),
            "known kinds",
        )));
    };
    let mut clock = default_clock;
    let mut clock_given: Option<&Located<crate::component::Value>> = None;
    let mut static_mw: Option<f64> = None;
    let mut given: Vec<(&'static str, crate::component::Value)> = Vec::new();
    let mut origins: Vec<(&'static str, Origin)> = Vec::new();
    for (k, v) in &m.entries {
        let key_path = format!("modules.{name}.{}", k.value);
        if k.value == "kind" {
            continue;
        }
        if given.iter().any(|(g, _)| *g == k.value)
            || (k.value == "clock_mhz" && clock_given.is_some())
            || (k.value == "static_mw" && static_mw.is_some())
        {
            return Err(InputError::new(
                format!("parameter `{}` of `{name}` is given twice", k.value),
                k.origin.clone(),
                key_path,
            ));
        }
        if k.value == "clock_mhz" {
            let mhz = match v.value {
                crate::component::Value::Int(i) => i as f64,
                crate::component::Value::Float(x) => x,
                _ => f64::NAN,
            };
            clock = clock_of(
                &Located {
                    value: mhz,
                    origin: v.origin.clone(),
                },
                &key_path,
            )?;
            clock_given = Some(v);
            continue;
        }
        if k.value == "static_mw" {
            let mw = match v.value {
                crate::component::Value::Int(i) => i as f64,
                crate::component::Value::Float(x) => x,
                _ => f64::NAN,
            };
            if !(0.0..=STATIC_MW_MAX).contains(&mw) {
                return Err(InputError::new(
                    format!("bad value for `{name}.static_mw`: {}", v.value),
                    v.origin.clone(),
                    key_path,
                )
                .with_hint(format!(
                    "static power of this module in mW, a number in 0..={STATIC_MW_MAX} (1 kW), e.g. `25`"
                )));
            }
            static_mw = Some(mw);
            continue;
        }
        let Some(p) = spec.param(&k.value) else {
            let mut names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            names.push("clock_mhz");
            names.push("static_mw");
            return Err(InputError::new(
                format!(
                    "unknown parameter `{}` on `{name}` (kind `{}`)",
                    k.value, spec.kind
                ),
                k.origin.clone(),
                key_path,
            )
            .with_hint(suggestion(&k.value, &names, "parameters of this kind")));
        };
        let value = v.value.check(&p.ty).map_err(|msg| {
            InputError::new(
                format!("bad value for `{name}.{}`: {msg}", p.name),
                v.origin.clone(),
                key_path.clone(),
            )
            .with_hint(param_hint(p))
        })?;
        given.push((p.name, value));
        origins.push((p.name, v.origin.clone()));
    }
    let mut values = Vec::with_capacity(spec.params.len());
    for p in spec.params {
        if let Some((_, v)) = given.iter().find(|(g, _)| *g == p.name) {
            values.push((p.name, v.clone()));
        } else if let Some(d) = p.default.value() {
            values.push((p.name, d));
        } else {
            debug_assert!(matches!(p.default, ParamDefault::Required));
            return Err(InputError::new(
                format!("module `{name}` needs parameter `{}`", p.name),
                m.name.origin.clone(),
                format!("modules.{name}"),
            )
            .with_hint(param_hint(p)));
        }
    }
    let params = Params::new(values);
    if let Some(fixed) = spec.fixed_clock {
        let own = fixed(&params).map_err(|msg| {
            InputError::new(
                format!("module `{name}` (kind `{}`): {msg}", spec.kind),
                m.name.origin.clone(),
                format!("modules.{name}"),
            )
        })?;
        if let Some(v) = clock_given
            && clock.period() != own.period()
        {
            return Err(InputError::new(
                format!(
                    "`{name}.clock_mhz` = {} disagrees with its parameters: a `{}` runs at {:.3} MHz (period {} ps)",
                    v.value,
                    spec.kind,
                    own.mhz(),
                    own.period().as_ps()
                ),
                v.origin.clone(),
                format!("modules.{name}.clock_mhz"),
            )
            .with_hint(format!(
                "drop `clock_mhz` (the clock follows from the other parameters, e.g. a DRAM's `preset`) or give {}",
                own_mhz_text(own)
            )));
        }
        clock = own;
    }
    Ok(ModuleInst {
        name: name.clone(),
        spec,
        params,
        clock,
        static_mw: static_mw.unwrap_or(0.0),
        origin: m.name.origin.clone(),
        param_origins: origins,
    })
}

/// A clock as a `clock_mhz` value that gives exactly its period (`1200` for 833 ps).
fn own_mhz_text(c: Clock) -> String {
    let rounded = c.mhz().round();
    if Clock::from_mhz(rounded) == Some(c) {
        format!("`{rounded}`")
    } else {
        format!("`{}`", c.mhz())
    }
}

fn param_hint(p: &crate::component::ParamSpec) -> String {
    let unit = if p.unit.is_empty() {
        String::new()
    } else {
        format!(" ({})", p.unit)
    };
    format!("`{}`{unit}: {}; {}", p.name, p.doc, p.ty.describe())
}

fn endpoint(
    v: &Located<String>,
    key: &str,
    want: Dir,
    modules: &[ModuleInst],
) -> Result<PortRef, InputError> {
    let Some((inst, port)) = v.value.split_once('.') else {
        return Err(InputError::new(
            format!("`{}` is not of the form `instance.port`", v.value),
            v.origin.clone(),
            key,
        )
        .with_hint("write the module instance and its port, e.g. `pe_array.psum_out`"));
    };
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let Some(mi) = modules.iter().position(|m| m.name == inst) else {
        return Err(
            InputError::new(format!("unknown module `{inst}`"), v.origin.clone(), key)
                .with_hint(suggestion(inst, &names, "modules")),
        );
    };
    let spec: &ModuleSpec = modules[mi].spec;
    let Some(p) = spec.port(port) else {
        let ports: Vec<&str> = spec
            .ports
            .iter()
            .filter(|p| p.dir == want)
            .map(|p| p.name)
            .collect();
        return Err(InputError::new(
            format!("unknown port `{port}` on `{inst}` (kind `{}`)", spec.kind),
            v.origin.clone(),
            key,
        )
        .with_hint(suggestion(port, &ports, &format!("{} ports", want.name()))));
    };
    if p.dir != want {
        return Err(InputError::new(
            format!(
                "port `{inst}.{port}` is an {}, but `{key}` needs an {}",
                p.dir.name(),
                want.name()
            ),
            v.origin.clone(),
            key,
        )
        .with_hint("links go `from:` an output `to:` an input; swap them?"));
    }
    Ok(PortRef {
        module: mi,
        port: p.name,
    })
}

fn int_field(
    v: &Option<Located<i64>>,
    key: String,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, InputError> {
    match v {
        None => Ok(default),
        Some(x) if x.value >= min && x.value <= max => Ok(x.value),
        Some(x) => Err(InputError::new(
            format!("`{key}` = {} is out of range", x.value),
            x.origin.clone(),
            key,
        )
        .with_hint(format!("expected an integer in {min}..={max}"))),
    }
}

fn link(
    i: usize,
    l: &Located<RawLinkDoc>,
    modules: &[ModuleInst],
    earlier: &[LinkInst],
) -> Result<LinkInst, InputError> {
    let r = &l.value;
    let from_key = format!("links[{i}].from");
    let to_key = format!("links[{i}].to");
    let from = endpoint(&r.from, &from_key, Dir::Out, modules)?;
    let to = endpoint(&r.to, &to_key, Dir::In, modules)?;
    for (end, key, v) in [(&from, &from_key, &r.from), (&to, &to_key, &r.to)] {
        if let Some(prev) = earlier.iter().find(|e| &e.from == end || &e.to == end) {
            return Err(InputError::new(
                format!("port `{}` is connected twice", v.value),
                v.origin.clone(),
                key.clone(),
            )
            .with_hint(format!(
                "it is already connected by the link at {}",
                prev.origin
            )));
        }
    }
    let tf = modules[from.module].spec.port(from.port).map(|p| p.txn);
    let tt = modules[to.module].spec.port(to.port).map(|p| p.txn);
    if let (Some(tf), Some(tt)) = (tf, tt)
        && tf != tt
    {
        return Err(InputError::new(
            format!(
                "port types do not match: `{}` sends `{}` but `{}` takes `{}`",
                r.from.value,
                tf.name(),
                r.to.value,
                tt.name()
            ),
            r.to.origin.clone(),
            to_key,
        )
        .with_hint("connect ports that carry the same transaction type (see `stasim models`)"));
    }
    let depth = int_field(
        &r.depth,
        format!("links[{i}].depth"),
        1,
        1 << 24,
        DEFAULT_DEPTH as i64,
    )?;
    let latency = int_field(
        &r.latency_cycles,
        format!("links[{i}].latency_cycles"),
        0,
        MAX_CYCLES,
        0,
    )?;
    let width = int_field(
        &r.width_bytes,
        format!("links[{i}].width_bytes"),
        0,
        1 << 32,
        0,
    )?;
    Ok(LinkInst {
        from,
        to,
        depth: depth as u32,
        latency_cycles: latency as u64,
        width_bytes: width as u64,
        origin: l.origin.clone(),
    })
}

fn check_connected(modules: &[ModuleInst], links: &[LinkInst]) -> Result<(), InputError> {
    for (mi, m) in modules.iter().enumerate() {
        for p in m.spec.ports.iter().filter(|p| !p.optional) {
            let here = PortRef {
                module: mi,
                port: p.name,
            };
            if !links.iter().any(|l| l.from == here || l.to == here) {
                let side = if p.dir == Dir::Out { "from" } else { "to" };
                return Err(InputError::new(
                    format!(
                        "port `{}.{}` ({}, `{}`) is not connected",
                        m.name,
                        p.name,
                        p.dir.name(),
                        p.txn.name()
                    ),
                    m.origin.clone(),
                    format!("modules.{}", m.name),
                )
                .with_hint(format!("add a link with `{side}: {}.{}`", m.name, p.name)));
            }
        }
    }
    Ok(())
}

fn check_zero_latency_loops(modules: &[ModuleInst], links: &[LinkInst]) -> Result<(), InputError> {
    let mut g = DiGraph::<usize, usize>::new();
    let nodes: Vec<_> = (0..modules.len()).map(|i| g.add_node(i)).collect();
    for (i, l) in links
        .iter()
        .enumerate()
        .filter(|(_, l)| l.latency_cycles == 0)
    {
        g.add_edge(nodes[l.from.module], nodes[l.to.module], i);
    }
    for scc in tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let mut members: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
        members.sort_unstable();
        let in_loop =
            |l: &&LinkInst| members.contains(&l.from.module) && members.contains(&l.to.module);
        let first = links
            .iter()
            .filter(|l| l.latency_cycles == 0)
            .find(in_loop)
            .map_or(Origin::Builtin, |l| l.origin.clone());
        let names: Vec<&str> = members.iter().map(|&i| modules[i].name.as_str()).collect();
        return Err(InputError::new(
            format!(
                "links with zero latency close a loop through {}",
                quote_list(&names)
            ),
            first,
            "links",
        )
        .with_hint("give at least one link of the loop `latency_cycles: 1` or more"));
    }
    Ok(())
}
