//! `stasim completions bash|zsh|fish`: a completion script for each shell that knows every
//! subcommand, and a bash script that actually completes.

use std::process::{Command, Output};

const SUBCOMMANDS: [&str; 9] = [
    "run",
    "prune",
    "check",
    "graph",
    "models",
    "bench",
    "dram",
    "sweep",
    "completions",
];

fn completions(shell: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(["completions", shell])
        .output()
        .unwrap()
}

#[test]
fn each_shell_gets_a_script_naming_every_subcommand() {
    // How each shell's script registers itself for `stasim`.
    for (shell, marker) in [
        ("bash", "complete -F _stasim"),
        ("zsh", "#compdef stasim"),
        ("fish", "complete -c stasim"),
    ] {
        let o = completions(shell);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no `{sub}`");
        }
        // Flags of `run` are completed too (fish writes them as `-l NAME`).
        for flag in ["checkpoint", "trace-window", "vcd-strings"] {
            assert!(script.contains(flag), "{shell}: no `{flag}`");
        }
    }
}

#[test]
fn the_bash_script_completes_subcommands_and_flags() {
    let script = String::from_utf8(completions("bash").stdout).unwrap();
    // Source it and ask for completions the way bash's readline does.
    let ask = |words: &str| -> Vec<String> {
        let program = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             _stasim stasim \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let o = Command::new("bash")
            .args(["--norc", "-c", &program])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(ask("stasim com"), ["completions"]);
    assert_eq!(ask("stasim completions z"), ["zsh"]);
    assert_eq!(ask("stasim run --checkp"), ["--checkpoint"]);
    let all = ask("stasim ''");
    for sub in SUBCOMMANDS {
        assert!(all.iter().any(|w| w == sub), "no {sub} in {all:?}");
    }
}

#[test]
fn an_unknown_shell_is_an_input_error() {
    let o = completions("tcsh");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bash"));
    assert!(o.stdout.is_empty());
}
