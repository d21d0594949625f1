//! `stasim models [KIND]`: every module kind with ports, parameters, units and defaults.

use stasim::Error;
use stasim::component::{ModuleSpec, quote_list};
use stasim::topology::registry;

/// Arguments of `models`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show only this kind.
    pub kind: Option<String>,
}

fn print_kind(k: &ModuleSpec) -> Result<(), Error> {
    outln!("{}: {}", k.kind, k.summary);
    outln!("  ports:");
    for p in k.ports {
        let opt = if p.optional { ", optional" } else { "" };
        outln!(
            "    {:<14} {:<6} {:<12} {}{opt}",
            p.name,
            p.dir.name(),
            p.txn.name(),
            p.doc
        );
    }
    outln!("  parameters:");
    let (lo, hi) = stasim::component::CLOCK_MHZ_RANGE;
    if k.fixed_clock.is_some() {
        outln!(
            "    {:<18} {:<10} clock of this instance: follows from its parameters (the preset's command clock); may only repeat it",
            "clock_mhz",
            "MHz"
        );
    } else {
        outln!(
            "    {:<18} {:<10} clock of this instance; a number in {lo}..={hi}; default: the topology's clock_mhz",
            "clock_mhz",
            "MHz"
        );
    }
    outln!(
        "    {:<18} {:<10} static power of this instance (energy report); a number in 0..={}; default 0",
        "static_mw",
        "mW",
        stasim::component::STATIC_MW_MAX
    );
    for p in k.params {
        let default = p
            .default
            .value()
            .map_or_else(|| "required".to_owned(), |v| format!("default {v}"));
        outln!(
            "    {:<18} {:<10} {}; {}; {default}",
            p.name,
            p.unit,
            p.doc,
            p.ty.describe()
        );
    }
    outln!();
    Ok(())
}

/// Runs `models`.
pub fn run(a: &Args) -> Result<(), Error> {
    match &a.kind {
        Some(name) => match registry::kind(name) {
            Some(k) => print_kind(k)?,
            None => {
                return Err(super::arg_error(
                    format!("unknown module kind `{name}`"),
                    name,
                    stasim::topology::error::suggestion(
                        name,
                        &registry::kind_names(),
                        "known kinds",
                    ),
                ));
            }
        },
        None => {
            outln!("module kinds: {}\n", quote_list(&registry::kind_names()));
            for k in registry::KINDS {
                print_kind(k)?;
            }
        }
    }
    Ok(())
}
