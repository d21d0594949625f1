//! `stasim tokenize --model smollm2|minilm [--file PATH] [--decode] TEXT`: the token ids of
//! TEXT (one line, space-separated) and, with `--decode`, the text they decode to (quoted).

use std::path::PathBuf;

use stasim::Error;
use stasim::eval::tokenizer::{ByteBpe, WordPiece};

/// Which model's tokeniser.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// SmolLM2's byte-level BPE, from its GGUF (no BOS added).
    Smollm2,
    /// MiniLM-L6's WordPiece, from its tokenizer.json (`[CLS] ... [SEP]`).
    Minilm,
}

/// Arguments of `tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model whose tokeniser to use.
    #[arg(long)]
    pub model: Model,
    /// The tokeniser file (default: where scripts/fetch-smollm2.sh or scripts/fetch-minilm.sh
    /// put it, under ~/.cache/stasim).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Also print the text the ids decode to.
    #[arg(long)]
    pub decode: bool,
    /// The text.
    pub text: String,
}

/// Runs `tokenize`.
pub fn run(a: &Args) -> Result<(), Error> {
    let (default, script) = match a.model {
        Model::Smollm2 => (super::SMOLLM2_GGUF, "scripts/fetch-smollm2.sh"),
        Model::Minilm => ("minilm/tokenizer.json", "scripts/fetch-minilm.sh"),
    };
    let path = a.file.clone().unwrap_or_else(|| super::cached(default));
    if !path.is_file() {
        return Err(super::arg_error(
            format!("tokeniser file {} not found", path.display()),
            &path.display().to_string(),
            format!("run {script}, or give the file with --file"),
        ));
    }
    let (ids, decoded) = match a.model {
        Model::Smollm2 => {
            let t = ByteBpe::from_gguf_file(&path)?;
            let ids = t.encode(&a.text);
            (ids.clone(), t.decode(&ids))
        }
        Model::Minilm => {
            let t = WordPiece::from_file(&path)?;
            let ids = t.encode(&a.text);
            (ids.clone(), t.decode(&ids))
        }
    };
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    outln!("{}", line.join(" "));
    if a.decode {
        let text = decoded.map_err(|e| Error::Failed(format!("decoding failed: {e}")))?;
        outln!("{text:?}");
    }
    Ok(())
}
