//! Evaluation: what a pruned model's quality is measured on (issue 15). So far the text
//! ([`text`]: calibration and held-out evaluation splits of public-domain plays) and a fast
//! f32 forward pass of Llama-family decoders ([`forward`]).

pub mod forward;
pub mod text;
