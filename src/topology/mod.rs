//! Topologies: a YAML file naming module instances and the links between their ports,
//! validated into a petgraph graph and built into a [`Simulation`].
//!
//! ```yaml
//! name: pipeline
//! clock_mhz: 1000            # default clock of every module (MHz)
//! modules:
//!   source: {kind: source, count: 1000}
//!   s0:     {kind: stage, service_cycles: 1}
//!   sink:   {kind: sink}
//! links:
//!   - {from: source.out, to: s0.in, depth: 4}   # depth: transactions; latency_cycles, width_bytes
//!   - {from: s0.out, to: sink.in, depth: 4}
//! ```
//!
//! Loading: [`parse`] (YAML -> [`raw::Document`]), [`overrides::apply`] (`--set`), then
//! [`validate::validate`] (-> [`Topology`]). [`load`] does all three.

pub mod dot;
pub mod error;
pub mod keypath;
pub mod overrides;
pub mod raw;
pub mod registry;
pub mod validate;

use petgraph::graph::DiGraph;

pub use error::{InputError, Origin};
pub use overrides::SetOverride;

use crate::component::{BuildArgs, ModuleSpec, Params};
use crate::kernel::{ActorId, Clock, LinkId, LinkSpec, Simulation};
use crate::txn::Transaction;

/// Topologies compiled into the binary, usable by name (`stasim check pipeline`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("sta", include_str!("../../topologies/sta.yaml")),
    ("sta-small", include_str!("../../topologies/sta-small.yaml")),
    (
        "sta-offchip-softmax",
        include_str!("../../topologies/sta-offchip-softmax.yaml"),
    ),
    ("sta-hbm2", include_str!("../../topologies/sta-hbm2.yaml")),
    (
        "sta-lpddr5",
        include_str!("../../topologies/sta-lpddr5.yaml"),
    ),
    ("dense", include_str!("../../topologies/dense.yaml")),
    ("pipeline", include_str!("../../topologies/pipeline.yaml")),
];

/// A module port: `(module index, port name)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRef {
    /// Index into [`Topology::modules`].
    pub module: usize,
    /// Port name.
    pub port: &'static str,
}

/// A validated module instance.
#[derive(Debug)]
pub struct ModuleInst {
    /// Instance name.
    pub name: String,
    /// Its kind.
    pub spec: &'static ModuleSpec,
    /// Validated parameters with defaults.
    pub params: Params,
    /// Its clock domain.
    pub clock: Clock,
    /// Its static power, mW (`static_mw`, a parameter of every kind; default 0).
    pub static_mw: f64,
    /// Where it is defined.
    pub origin: Origin,
    /// Where each parameter given (in the file or by `--set`) was written.
    pub param_origins: Vec<(&'static str, Origin)>,
}

impl ModuleInst {
    /// Where parameter `name` was written; where the module is defined if it was not
    /// given (its default applies).
    pub fn param_origin(&self, name: &str) -> &Origin {
        self.param_origins
            .iter()
            .find(|(p, _)| *p == name)
            .map_or(&self.origin, |(_, o)| o)
    }
}

/// A validated link.
#[derive(Debug)]
pub struct LinkInst {
    /// Output port.
    pub from: PortRef,
    /// Input port.
    pub to: PortRef,
    /// Capacity in transactions.
    pub depth: u32,
    /// Latency in sender cycles.
    pub latency_cycles: u64,
    /// Bytes per sender cycle (0 = unlimited).
    pub width_bytes: u64,
    /// Where it is defined.
    pub origin: Origin,
}

/// A validated topology.
#[derive(Debug)]
pub struct Topology {
    /// Display name.
    pub name: String,
    /// File it came from.
    pub path: String,
    /// Default clock.
    pub clock: Clock,
    /// Module instances in file order (actor `i` is module `i`).
    pub modules: Vec<ModuleInst>,
    /// Links in file order (link id `i` is link `i`).
    pub links: Vec<LinkInst>,
    /// Modules as nodes (weight: module index), links as edges (weight: link index).
    pub graph: DiGraph<usize, usize>,
    /// The file's `workload:` block (unvalidated fields with their origins).
    pub workload: raw::WorkloadDoc,
    /// The energy table (defaults, then the file's `energy:` block, then `--set energy.K=V`).
    pub energy: crate::energy::EnergyTable,
}

/// Topology text and the name to report it under.
#[derive(Clone, Debug)]
pub struct Source {
    /// File path, or `<builtin:NAME>`.
    pub path: String,
    /// YAML text.
    pub text: String,
}

impl Source {
    /// Reads `arg`: an existing file path, or the name of a built-in topology.
    pub fn read(arg: &str) -> Result<Source, InputError> {
        let p = std::path::Path::new(arg);
        if p.exists() {
            return crate::io::read_text_input(p)
                .map(|text| Source {
                    path: arg.to_owned(),
                    text,
                })
                .map_err(|e| {
                    InputError::new(
                        format!("cannot read `{arg}`: {e}"),
                        Origin::CommandLine(arg.into()),
                        "",
                    )
                });
        }
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == arg) {
            return Ok(Source {
                path: format!("<builtin:{name}>"),
                text: (*text).to_owned(),
            });
        }
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        Err(InputError::new(
            format!("no topology file `{arg}`"),
            Origin::CommandLine(arg.into()),
            "",
        )
        .with_hint(format!(
            "give a path to a YAML file, or a built-in topology: {}",
            crate::component::quote_list(&names)
        )))
    }
}

/// Parses YAML into a [`raw::Document`].
pub fn parse(src: &Source) -> Result<raw::Document, InputError> {
    let opts = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    let raw: raw::RawTopology =
        serde_saphyr::from_str_with_options(&src.text, opts).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
            let origin = Origin::File {
                path: src.path.clone(),
                line,
                column,
            };
            if let serde_saphyr::Error::Budget { breach, .. } = e.without_snippet() {
                return InputError::new(budget_message(breach), origin, "")
                    .with_hint("a topology needs a few hundred values; is this the right file?")
                    .with_source(&src.text);
            }
            let key = if line > 0 {
                keypath::at(&src.text, line, column).unwrap_or_default()
            } else {
                String::new()
            };
            let msg = plain_message(&strip_location(&e.without_snippet().to_string()));
            let msg = match found_at(&src.text, line, column) {
                Some(tok) if !key.is_empty() && msg.starts_with("expected ") => {
                    if tok.starts_with("a ") {
                        format!("bad value for `{key}`: {msg}, found {tok}")
                    } else {
                        format!("bad value for `{key}`: {msg}, found `{tok}`")
                    }
                }
                _ => msg,
            };
            InputError::new(msg, origin, key)
                .with_hint(
                    "see `stasim models` for module kinds and the README for the file format",
                )
                .with_source(&src.text)
        })?;
    Ok(raw.into_document(&src.path))
}

/// The YAML reader's terse type errors in words.
fn plain_message(msg: &str) -> String {
    match msg {
        "invalid i64" | "invalid u64" | "invalid i32" | "invalid u32" => {
            "expected a whole number from -2^63 to 2^63-1".into()
        }
        "invalid floating point" => "expected a number".into(),
        "expected string scalar" => "expected a text value".into(),
        other => other.to_owned(),
    }
}

/// The scalar written at 1-based `line`, `column` (up to a flow delimiter), clipped.
fn found_at(text: &str, line: u32, column: u32) -> Option<String> {
    let l = text.lines().nth((line as usize).checked_sub(1)?)?;
    let rest: String = l
        .chars()
        .skip((column as usize).saturating_sub(1))
        .collect();
    match rest.chars().next() {
        Some('[') => return Some("a list".into()),
        Some('{') => return Some("a mapping".into()),
        _ => {}
    }
    let tok: String = rest
        .chars()
        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
        .collect();
    let tok = tok.trim();
    if tok.is_empty() {
        return None;
    }
    let mut shown: String = tok.chars().take(40).collect();
    if tok.chars().count() > 40 {
        shown.push('…');
    }
    Some(shown)
}

/// A breached limit of the YAML reader, named with its value.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let b = serde_saphyr::budget::Budget::default();
    let (what, limit, name) = match breach {
        B::Events { .. } => ("parser events", b.max_events, "max_events"),
        B::Aliases { .. } => ("aliases (`*name`)", b.max_aliases, "max_aliases"),
        B::Anchors { .. } => ("anchors (`&name`)", b.max_anchors, "max_anchors"),
        B::Depth { .. } => ("levels of nesting", b.max_depth, "max_depth"),
        B::Documents { .. } => ("YAML documents", b.max_documents, "max_documents"),
        B::Nodes { .. } => ("values (YAML nodes)", b.max_nodes, "max_nodes"),
        B::ScalarBytes { .. } => (
            "bytes of text in values",
            b.max_total_scalar_bytes,
            "max_total_scalar_bytes",
        ),
        other => {
            return format!("the file exceeds a limit of the YAML reader ({other:?})");
        }
    };
    format!("the file has more than {limit} {what}, the YAML reader's limit (`{name}`)")
}

/// serde-saphyr puts the location into its messages (`line L column C: ...` or
/// `... at line L, column C`); we show it separately, so strip it.
fn strip_location(msg: &str) -> String {
    let msg = msg
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map_or(msg, |(_, rest)| rest)
        .trim_start_matches("error: ");
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => msg[..i].to_owned(),
        _ => msg.to_owned(),
    }
}

/// Parses, applies overrides, validates.
pub fn load(src: &Source, sets: &[SetOverride]) -> Result<Topology, InputError> {
    let mut doc = parse(src)?;
    overrides::apply(&mut doc, sets)?;
    validate::validate(&doc).map_err(|e| e.with_source(&src.text))
}

impl Topology {
    /// Looks up a module by instance name.
    pub fn module_index(&self, name: &str) -> Option<usize> {
        self.modules.iter().position(|m| m.name == name)
    }

    /// The link's display name, `a.out -> b.in`.
    pub fn link_name(&self, l: &LinkInst) -> String {
        format!(
            "{}.{} -> {}.{}",
            self.modules[l.from.module].name,
            l.from.port,
            self.modules[l.to.module].name,
            l.to.port
        )
    }

    /// Distinct clock domains as `(clock, instance names)`, fastest first.
    pub fn clock_domains(&self) -> Vec<(Clock, Vec<&str>)> {
        let mut out: Vec<(Clock, Vec<&str>)> = Vec::new();
        for m in &self.modules {
            match out.iter_mut().find(|(c, _)| *c == m.clock) {
                Some((_, names)) => names.push(&m.name),
                None => out.push((m.clock, vec![&m.name])),
            }
        }
        out.sort_by_key(|(c, _)| c.period());
        out
    }

    /// Builds the simulation with no workload: actor `i` is module `i`, link `i` is link `i`.
    pub fn build(&self) -> Result<Simulation<Transaction>, InputError> {
        self.build_with(None, None)
    }

    /// Builds the simulation for `workload` (needed by a `controller`), with the data plane
    /// of a functional run if there is one.
    pub fn build_with(
        &self,
        workload: Option<&crate::workload::Workload>,
        functional: Option<&crate::functional::Shared>,
    ) -> Result<Simulation<Transaction>, InputError> {
        self.build_inner(workload, functional, None)
    }

    /// Builds the simulation with the actor of module `module` supplied by the caller
    /// instead of built from its kind (the module's ports and parameters are still
    /// validated): a command that drives a topology from outside, e.g. trace replay feeding
    /// a `dram` from a file.
    pub fn build_supplying(
        &self,
        module: usize,
        actor: Box<dyn crate::kernel::Actor<Transaction>>,
    ) -> Result<Simulation<Transaction>, InputError> {
        self.build_inner(None, None, Some((module, actor)))
    }

    fn build_inner(
        &self,
        workload: Option<&crate::workload::Workload>,
        functional: Option<&crate::functional::Shared>,
        mut supplied: Option<(usize, Box<dyn crate::kernel::Actor<Transaction>>)>,
    ) -> Result<Simulation<Transaction>, InputError> {
        let mut sim = Simulation::new();
        for l in &self.links {
            sim.add_link(LinkSpec {
                name: self.link_name(l),
                src: l.from.module as u32,
                dst: l.to.module as u32,
                depth: l.depth,
                latency_cycles: l.latency_cycles,
                width_bytes: l.width_bytes,
                period: self.modules[l.from.module].clock.period(),
            });
        }
        for (mi, m) in self.modules.iter().enumerate() {
            let ports: Vec<(&'static str, LinkId)> = self
                .links
                .iter()
                .enumerate()
                .filter_map(|(li, l)| {
                    if l.from.module == mi {
                        Some((l.from.port, LinkId(li as u32)))
                    } else if l.to.module == mi {
                        Some((l.to.port, LinkId(li as u32)))
                    } else {
                        None
                    }
                })
                .collect();
            let peers: Vec<(&'static str, &'static ModuleSpec, &Params)> = self
                .links
                .iter()
                .filter_map(|l| {
                    if l.from.module == mi {
                        let o = &self.modules[l.to.module];
                        Some((l.from.port, o.spec, &o.params))
                    } else if l.to.module == mi {
                        let o = &self.modules[l.from.module];
                        Some((l.to.port, o.spec, &o.params))
                    } else {
                        None
                    }
                })
                .collect();
            // The far ends of every peer's ports (each link seen from the peer's side).
            let peers2: Vec<(&'static str, &'static str, &'static ModuleSpec, &Params)> = self
                .links
                .iter()
                .filter_map(|l| {
                    if l.from.module == mi {
                        Some((l.from.port, l.to.module))
                    } else if l.to.module == mi {
                        Some((l.to.port, l.from.module))
                    } else {
                        None
                    }
                })
                .flat_map(|(mine, peer)| {
                    self.links.iter().filter_map(move |l| {
                        let (theirs, far) = if l.from.module == peer {
                            (l.from.port, l.to.module)
                        } else if l.to.module == peer {
                            (l.to.port, l.from.module)
                        } else {
                            return None;
                        };
                        let o = &self.modules[far];
                        Some((mine, theirs, o.spec, &o.params))
                    })
                })
                .collect();
            let args = BuildArgs {
                name: &m.name,
                params: &m.params,
                clock: m.clock,
                ports: &ports,
                peers: &peers,
                peers2: &peers2,
                workload,
                functional,
            };
            if let Some((_, actor)) = supplied.take_if(|(i, _)| *i == mi) {
                let id = sim.add_actor(m.name.clone(), m.clock, actor);
                debug_assert_eq!(id, ActorId(mi as u32));
                continue;
            }
            let actor = (m.spec.build)(&args).map_err(|msg| {
                InputError::new(
                    format!("module `{}` (kind `{}`): {msg}", m.name, m.spec.kind),
                    m.origin.clone(),
                    format!("modules.{}", m.name),
                )
                .with_hint(format!("see `stasim models {}`", m.spec.kind))
            })?;
            let id = sim.add_actor(m.name.clone(), m.clock, actor);
            debug_assert_eq!(id, ActorId(mi as u32));
        }
        Ok(sim)
    }
}
