//! The calibration and evaluation text (`src/eval/text.rs`): the plays of
//! `scripts/fetch-text.sh`, split so that no evaluation play is calibrated on.

use stasim::eval::text::{self, MAX_PLAY_BYTES, Split};

/// The fetched plays, or a visible skip.
fn plays_dir() -> Option<std::path::PathBuf> {
    let dir = text::default_dir();
    if dir.join("COMPLETE").exists() {
        Some(dir)
    } else {
        crate::support::skipped(&format!(
            "{} not found (run scripts/fetch-text.sh)",
            dir.display()
        ));
        None
    }
}

#[test]
fn calibration_and_evaluation_are_different_plays_and_neither_is_empty() {
    let cal = Split::Calibration.plays();
    let eval = Split::Evaluation.plays();
    assert!(cal.iter().all(|p| !eval.contains(p)), "{cal:?} / {eval:?}");
    let Some(dir) = plays_dir() else { return };
    let (c, e) = (
        text::load(&dir, Split::Calibration).unwrap(),
        text::load(&dir, Split::Evaluation).unwrap(),
    );
    // The files' sizes (as the package ships them) and the blank lines joining them.
    assert_eq!(c.len(), 460_897 + 3 * 2);
    assert_eq!(e.len(), 583_810 + 3 * 2);
    // A line of each split's plays is found in its own text only.
    for (line, own, other) in [
        ("Full fathom five thy father lies:", &c, &e),
        ("To be, or not to be,--that is the question:--", &e, &c),
    ] {
        assert!(own.contains(line) && !other.contains(line), "{line}");
    }
    assert!(!c.contains('\r') && !e.contains('\r'));
}

#[test]
fn a_missing_or_oversized_play_is_an_error_naming_the_file() {
    let dir = crate::support::tmp_dir("text", "bad");
    let err = text::load(&dir, Split::Evaluation).unwrap_err();
    assert!(
        err.contains("hamlet_gut.txt") && err.contains("scripts/fetch-text.sh"),
        "{err}"
    );
    let f = std::fs::File::create(dir.join("hamlet_gut.txt")).unwrap();
    f.set_len(MAX_PLAY_BYTES + 1).unwrap();
    let err = text::load(&dir, Split::Evaluation).unwrap_err();
    assert!(
        err.contains("hamlet_gut.txt") && err.contains("bytes"),
        "{err}"
    );
}
