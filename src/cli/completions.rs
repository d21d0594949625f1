//! `stasim completions SHELL`: a tab-completion script for bash, zsh or fish on stdout,
//! generated from the command-line definition itself (subcommands, flags, value names).

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;
use stasim::Error;

/// Arguments of `completions`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Install, for example:\n  \
    bash: stasim completions bash > ~/.local/share/bash-completion/completions/stasim\n  \
    zsh:  stasim completions zsh > ~/.zfunc/_stasim   (with fpath+=~/.zfunc before compinit)\n  \
    fish: stasim completions fish > ~/.config/fish/completions/stasim.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Which,
}

/// The shells supported.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Runs `completions`.
pub fn run(a: &Args) -> Result<(), Error> {
    let shell = match a.shell {
        Which::Bash => Shell::Bash,
        Which::Zsh => Shell::Zsh,
        Which::Fish => Shell::Fish,
    };
    // Generated into memory (clap_complete panics on a failed write), then written out.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "stasim", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Output(format!("cannot write the completion script to stdout: {e}")))
}
