//! Every command of the README runs as written. The ```sh blocks of README.md are run in
//! order, line by line, in one temporary folder (later blocks use what earlier ones wrote)
//! with the built `stasim` first on PATH and the repository's `scripts/`, `benches/`,
//! `topologies/` and sweep files beside them; a command that exits non-zero fails the test,
//! naming its README line.
//!
//! A block is tagged by an HTML comment on the line before it, `<!-- readme-test: TAGS -->`:
//! - (no tag): quick, run by every `cargo test`;
//! - `release`: seconds in a release build, minutes in a debug one: run by the release test
//!   suite only;
//! - `minilm`: needs MiniLM-L6 fetched by scripts/fetch-minilm.sh;
//! - `smollm2`: needs the SmolLM2-135M GGUF fetched by scripts/fetch-smollm2.sh;
//! - `needs=TOOL,...`: needs those programs on PATH;
//! - `slow`: minutes even in release: run only by scripts/readme-commands.sh (which sets
//!   `STASIM_README_ALL=1`, fetches MiniLM first and runs this test);
//! - `skip`: never run here (the block says why; e.g. the `cargo` commands).
//!
//! A block that is not run says "skipped" with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{skipped, tmp_dir};

/// One ```sh block: the README line of its first command, its tags and its commands (with
/// their README lines).
struct Block {
    line: usize,
    tags: Vec<String>,
    commands: Vec<(usize, String)>,
}

/// The ```sh blocks of `text`, with the tags of the comment before each.
fn sh_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut current: Option<Block> = None;
    let mut pending = String::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if let Some(b) = current.as_mut() {
            if line.starts_with("```") {
                blocks.push(current.take().unwrap());
                continue;
            }
            let code = line.trim_start();
            if code.is_empty() || code.starts_with('#') {
                continue;
            }
            // A trailing backslash continues the command on the next line.
            if let Some(head) = code.strip_suffix('\\') {
                pending.push_str(head.trim_end());
                pending.push(' ');
                continue;
            }
            pending.push_str(code);
            b.commands.push((n, std::mem::take(&mut pending)));
            continue;
        }
        if line.starts_with("```sh") {
            current = Some(Block {
                line: n + 1,
                tags: std::mem::take(&mut tags),
                commands: Vec::new(),
            });
        } else if let Some(rest) = line.trim().strip_prefix("<!-- readme-test:") {
            tags = rest
                .trim_end_matches("-->")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if !line.trim().is_empty() {
            tags.clear();
        }
    }
    blocks
}

/// Where a fetch script puts a model (under `~/.cache/stasim/`): the README's commands name
/// this path.
fn cached(path: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/stasim")
        .join(path)
}

/// Where scripts/fetch-minilm.sh puts MiniLM-L6.
fn minilm() -> PathBuf {
    cached("minilm/model.safetensors")
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where scripts/fetch-smollm2.sh puts the SmolLM2 GGUF.
const SMOLLM2: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Why `b` is not run by this test, or `None` to run it.
fn reason_to_skip(b: &Block, all: bool) -> Option<String> {
    for tag in &b.tags {
        let why = match tag.as_str() {
            "skip" => Some("tagged skip".to_owned()),
            "slow" if !all => Some("slow: run by scripts/readme-commands.sh".to_owned()),
            "release" if cfg!(debug_assertions) && !all => {
                Some("minutes in a debug build: run by cargo test --release".to_owned())
            }
            "minilm" if !minilm().exists() => Some(format!(
                "{} not found (run scripts/fetch-minilm.sh)",
                minilm().display()
            )),
            "smollm2" if !cached(SMOLLM2).exists() => Some(format!(
                "{} not found (run scripts/fetch-smollm2.sh)",
                cached(SMOLLM2).display()
            )),
            t => t.strip_prefix("needs=").and_then(|tools| {
                let missing: Vec<&str> = tools.split(',').filter(|t| !on_path(t)).collect();
                (!missing.is_empty()).then(|| format!("needs {}", missing.join(", ")))
            }),
        };
        if why.is_some() {
            return why;
        }
    }
    None
}

/// A folder holding `bin/stasim` (the binary under test) and `work/`, the commands' working
/// folder, with the repository's files the README's commands name.
fn sandbox(repo: &Path) -> (PathBuf, PathBuf) {
    let dir = tmp_dir("readme", "commands");
    let (bin, work) = (dir.join("bin"), dir.join("work"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(work.join("sweeps")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_stasim"), bin.join("stasim")).unwrap();
    // Scripts are run from the repository (they find it from their own path); inputs are
    // copied, so that no command can write into the checkout.
    for link in ["scripts", "benches"] {
        std::os::unix::fs::symlink(repo.join(link), work.join(link)).unwrap();
    }
    let copy = |from: &Path, to: &Path| {
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
            }
        }
    };
    std::fs::create_dir_all(work.join("topologies")).unwrap();
    copy(&repo.join("topologies"), &work.join("topologies"));
    copy(&repo.join("sweeps"), &work.join("sweeps"));
    (bin, work)
}

#[test]
fn the_readmes_shell_commands_run_as_written() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let blocks = sh_blocks(&text);
    assert!(blocks.len() >= 10, "found only {} sh blocks", blocks.len());
    let all = std::env::var_os("STASIM_README_ALL").is_some();
    let (bin, work) = sandbox(&repo);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for b in &blocks {
        assert!(
            !b.commands.is_empty(),
            "README.md:{}: an empty sh block",
            b.line
        );
        if let Some(why) = reason_to_skip(b, all) {
            skipped(&format!("README.md:{}: {why}", b.line));
            continue;
        }
        for (line, cmd) in &b.commands {
            eprintln!("README.md:{line}: $ {cmd}");
            let o = Command::new("bash")
                .args(["--norc", "-o", "pipefail", "-c", cmd])
                .current_dir(&work)
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "README.md:{line}: `{cmd}` exited {:?}\n{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
        }
    }
    eprintln!("{ran} README commands ran");
    assert!(ran > 0);
    let _ = std::fs::remove_dir_all(work.parent().unwrap());
}

#[test]
fn blocks_and_their_tags_are_read_from_the_markdown() {
    let text = "intro\n```sh\nstasim a   # note\n# a comment\n\nstasim b \\\n  --flag\n```\n\
        <!-- readme-test: release minilm -->\n```sh\nstasim c\n```\n\
        <!-- readme-test: skip -->\n\nprose between\n```sh\nstasim d\n```\n\
        ```text\nnot a command\n```\n";
    let b = sh_blocks(text);
    assert_eq!(b.len(), 3);
    assert_eq!(
        b[0].commands,
        [
            (3, "stasim a   # note".into()),
            (7, "stasim b --flag".into())
        ]
    );
    assert!(b[0].tags.is_empty());
    assert_eq!(b[1].tags, ["release", "minilm"]);
    assert_eq!(b[1].commands, [(11, "stasim c".into())]);
    // A tag applies only to the block right after it.
    assert!(b[2].tags.is_empty());
    let skip = Block {
        line: 1,
        tags: vec!["skip".into()],
        commands: Vec::new(),
    };
    assert!(reason_to_skip(&skip, true).is_some());
    let needs = Block {
        tags: vec!["needs=sh,no-such-tool-here".into()],
        ..skip
    };
    assert_eq!(
        reason_to_skip(&needs, true).as_deref(),
        Some("needs no-such-tool-here")
    );
}

/// The README's text between the heading `title` and the next heading of any level.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(title)
        .unwrap_or_else(|| panic!("no `{title}` in README.md"));
    let rest = &text[start + title.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn the_readme_lists_the_ops_csv_columns_and_report_keys_stasim_writes() {
    let dir = tmp_dir("readme", "report");
    let o = Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(["run", "sta-small", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = readme();
    let report_section = section(&text, "### The report");
    let csv = std::fs::read_to_string(dir.join("ops.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        report_section.contains(&format!("`{header}`")),
        "README's ops.csv columns differ from `{header}`"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let op = &report["layers"][0]["ops"][0];
    let keys = report
        .as_object()
        .unwrap()
        .keys()
        .chain(report["layers"][0].as_object().unwrap().keys())
        .chain(op.as_object().unwrap().keys())
        .chain(op["units"][0].as_object().unwrap().keys());
    for k in keys {
        assert!(
            report_section.contains(&format!("`{k}`"))
                || report_section.contains(&format!("`{k}[]`")),
            "README's report section does not name `{k}`"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_committed_sample_vcd_has_every_signal_the_readme_lists() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vcd = std::fs::read_to_string(repo.join("traces/sample-sta-small.vcd")).unwrap();
    let header = &vcd[..vcd.find("$enddefinitions").expect("a VCD header")];
    // (scope, signal): what the README's Traces section lists for a one-channel design.
    let text = readme();
    let traces = section(&text, "## Traces");
    let mut scope = String::new();
    let mut have: Vec<(String, String)> = Vec::new();
    for line in header.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["$scope", _, name, ..] => scope = (*name).to_owned(),
            ["$var", _, _, _, name, ..] => have.push((scope.clone(), (*name).to_owned())),
            _ => {}
        }
    }
    let has = |scope: &str, signal: &str| {
        have.iter()
            .any(|(s, n)| s == scope && (n == signal || n.starts_with(signal)))
    };
    for (scope, signal) in [
        ("pe_array", "busy"),
        ("pe_array", "state"),
        ("pe_array", "op"),
        ("pe_array", "utilization"),
        ("dram", "inflight"),
        ("dram", "gbps"),
        ("dram", "bank"),
        ("weight_buffer", "bytes_used"),
        ("act_buffer", "bytes_used"),
        ("softmax", "rows"),
    ] {
        assert!(
            traces.contains(&format!("`{signal}")),
            "README lists `{signal}`"
        );
        assert!(
            has(scope, signal),
            "traces/sample-sta-small.vcd has no `{signal}` in `{scope}`: run scripts/regenerate-samples.sh"
        );
    }
    assert!(have.iter().any(|(s, _)| s == "links"), "no `links` scope");
}
