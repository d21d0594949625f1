//! Evaluation: what a pruned model's quality is measured on (issue 15). So far the text
//! ([`text`]): calibration and held-out evaluation splits of public-domain plays.

pub mod text;
