//! Evaluation of real models: what turns text into the token ids a model reads, and back.
//!
//! - [`tokenizer`]: SmolLM2's byte-level BPE (from the GGUF's own token and merge tables)
//!   and MiniLM's WordPiece (from the `tokenizer.json` its package ships).

pub mod tokenizer;
