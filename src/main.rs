//! The `stasim` command: parse arguments, dispatch, map errors to exit codes
//! (0 ok, 1 simulation failed, 2 bad input).

mod cli;

fn main() {
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
