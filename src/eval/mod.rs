//! Evaluation: what a pruned model's quality is measured on (issue 15). So far the text
//! ([`text`]: calibration and held-out evaluation splits of public-domain plays), a fast
//! f32 forward pass of Llama-family decoders ([`forward`]) and of BERT-style encoders with
//! their sentence embeddings ([`encoder`]), fixed-point rounding for lower value bits
//! ([`quant`]), and the tokenisers that turn text
//! into token ids and back ([`tokenizer`]: SmolLM2's byte-level BPE from the GGUF's own token
//! and merge tables, MiniLM's WordPiece from its `tokenizer.json`).

pub mod calibrate;
pub mod encoder;
pub mod forward;
pub mod quant;
pub mod text;
pub mod tokenizer;
