//! `stasim check FILE`: validate a topology and summarise it.

use stasim::Error;
use stasim::topology::{self, Source};

/// Arguments of `check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Topology file, or the name of a built-in topology (`pipeline`).
    pub topology: String,
    /// Override a parameter: `INSTANCE.PARAM=VALUE` or `clock_mhz=VALUE` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `check`.
pub fn run(a: &Args) -> Result<(), Error> {
    let src = Source::read(&a.topology)?;
    let sets = super::parse_sets(&a.sets)?;
    let t = topology::load(&src, &sets)?;
    // Building catches constraints between parameters too (and plans the workload, if the
    // topology has a controller).
    let has_controller = t.modules.iter().any(|m| m.spec.kind == "controller");
    if has_controller {
        let w = stasim::run::resolve_workload(&t, &stasim::run::WorkloadArgs::default())?;
        stasim::run::build(&t, Some(&w), None)?;
    } else {
        stasim::run::build(&t, None, None)?;
    }
    outln!("{}: topology `{}` is valid", t.path, t.name);
    outln!("  modules: {}", t.modules.len());
    for m in &t.modules {
        outln!(
            "    {:<16} {:<14} {:.3} MHz",
            m.name,
            m.spec.kind,
            m.clock.mhz()
        );
    }
    outln!("  links: {}", t.links.len());
    for l in &t.links {
        outln!(
            "    {:<36} depth {:<4} latency {} cycles  width {}",
            t.link_name(l),
            l.depth,
            l.latency_cycles,
            if l.width_bytes == 0 {
                "unlimited".to_owned()
            } else {
                format!("{} B/cycle", l.width_bytes)
            }
        );
    }
    let domains = t.clock_domains();
    outln!("  clock domains: {}", domains.len());
    for (c, names) in domains {
        outln!(
            "    {:.3} MHz (period {} ps): {}",
            c.mhz(),
            c.period().as_ps(),
            names.join(", ")
        );
    }
    Ok(())
}
