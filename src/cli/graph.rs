//! `stasim graph FILE`: the topology as Graphviz DOT on stdout.

use stasim::Error;
use stasim::topology::{self, Source, dot};

/// Arguments of `graph`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Topology file, or the name of a built-in topology.
    pub topology: String,
    /// Override a parameter (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `graph`.
pub fn run(a: &Args) -> Result<(), Error> {
    let src = Source::read(&a.topology)?;
    let t = topology::load(&src, &super::parse_sets(&a.sets)?)?;
    out!("{}", dot::to_dot(&t));
    Ok(())
}
