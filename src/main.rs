//! The `stasim` command: parse arguments, dispatch, map errors to exit codes
//! (0 ok, 1 simulation failed, 2 bad input).

mod cli;

fn main() {
    // Like other Unix tools, end quietly when stdout is closed early (`stasim run | head`)
    // instead of panicking on the broken pipe.
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let code = match cli::main() {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{e}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}
