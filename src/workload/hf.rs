//! Model shapes from a Hugging Face `config.json` (`--model path/to/config.json`).
//!
//! The architecture comes from `architectures[0]` (else `model_type`):
//!
//! | architectures | lowered as | keys read |
//! |---|---|---|
//! | `LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM` | Llama-family decoder | `hidden_size`, `num_attention_heads`, `num_key_value_heads` (default the heads), `head_dim` (default `hidden_size / heads`), `intermediate_size`, `num_hidden_layers`, `vocab_size`, `tie_word_embeddings` (default false), `rope_theta` (default 10000), `rms_norm_eps` (default 1e-6), `max_position_embeddings` (default 2048); Qwen2's Q, K, V have a bias |
//! | `BertModel`, `BertForMaskedLM`, `BertForSequenceClassification`, ... (`model_type` `bert`) | encoder | `hidden_size`, `num_attention_heads`, `intermediate_size`, `num_hidden_layers` |
//! | `GPT2LMHeadModel`, `GPT2Model` | GPT-2 | `n_embd`, `n_head`, `n_inner` (default `4 n_embd`), `n_layer` |
//!
//! Any other architecture is an input error naming it and this list. A key of the wrong type
//! or out of range is an error at its line and column in the file.

use std::path::Path;

use serde_json::Value;

use super::{Decoder, MAX_DIM, ModelShape, Positions};
use crate::topology::{InputError, Origin};

/// Architectures lowered as Llama-family decoders.
const LLAMA: &[&str] = &["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];
/// Architectures lowered as GPT-2.
const GPT2: &[&str] = &["GPT2LMHeadModel", "GPT2Model"];

/// The architectures stasim lowers, for error messages.
pub fn supported() -> String {
    let mut v: Vec<&str> = LLAMA.to_vec();
    v.extend(GPT2);
    v.push("Bert* (model_type bert)");
    v.join(", ")
}

/// 1-based line and column of the first `"key"` in `text` (the file's start if absent).
fn locate(text: &str, key: &str) -> (u32, u32) {
    let Some(at) = text.find(&format!("\"{key}\"")) else {
        return (1, 1);
    };
    let before = &text[..at];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rfind('\n').map_or(at, |nl| at - nl - 1) as u32 + 1;
    (line, col)
}

/// A reader of one config file's keys, with errors at their place.
struct Config<'a> {
    path: String,
    text: &'a str,
    obj: &'a serde_json::Map<String, Value>,
}

impl Config<'_> {
    fn error(&self, key: &str, msg: String, hint: &str) -> InputError {
        let (line, column) = locate(self.text, key);
        InputError::new(
            msg,
            Origin::File {
                path: self.path.clone(),
                line,
                column,
            },
            key,
        )
        .with_hint(hint)
    }

    /// Integer key in `1..=MAX_DIM`, or `default` when absent (`None`: required).
    fn count(&self, key: &str, default: Option<u64>) -> Result<u64, InputError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => default.ok_or_else(|| {
                self.error(
                    key,
                    format!("`{key}` is missing"),
                    "a Hugging Face config.json of this architecture has it",
                )
            }),
            Some(v) => match v.as_u64() {
                Some(x) if (1..=MAX_DIM).contains(&x) => Ok(x),
                _ => Err(self.error(
                    key,
                    format!("`{key}` = {v} is not a whole number in 1..={MAX_DIM}"),
                    "give a positive integer",
                )),
            },
        }
    }

    fn float(&self, key: &str, default: f64) -> Result<f64, InputError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => Err(self.error(
                    key,
                    format!("`{key}` = {v} is not a positive number"),
                    "give a positive number",
                )),
            },
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, InputError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.error(
                key,
                format!("`{key}` = {v} is not true or false"),
                "give true or false",
            )),
        }
    }
}

/// Whether `--model` names a config file rather than a preset.
pub fn is_config_path(model: &str) -> bool {
    model.ends_with(".json") || model.contains('/') || model.contains('\\')
}

/// Reads the model shape of the config at `path`.
pub fn load(path: &Path, origin: &Origin) -> Result<ModelShape, InputError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::new(
            format!("cannot read `{shown}`: {e}"),
            origin.clone(),
            "workload.model",
        )
        .with_hint("give a model preset name or the path of a Hugging Face config.json")
    })?;
    parse(&text, &shown)
}

/// Parses config text (named `path` in errors).
pub fn parse(text: &str, path: &str) -> Result<ModelShape, InputError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        InputError::new(
            format!("`{path}` is not valid JSON: {e}"),
            Origin::File {
                path: path.into(),
                line: e.line() as u32,
                column: e.column() as u32,
            },
            "",
        )
        .with_hint("a Hugging Face config.json is one JSON object")
    })?;
    let Some(obj) = value.as_object() else {
        return Err(InputError::new(
            format!("`{path}` is not a JSON object"),
            Origin::File {
                path: path.into(),
                line: 1,
                column: 1,
            },
            "",
        )
        .with_hint("a Hugging Face config.json is one JSON object"));
    };
    let c = Config {
        path: path.into(),
        text,
        obj,
    };
    let arch = obj
        .get("architectures")
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(|a| a.as_str())
        .map(str::to_owned)
        .or_else(|| {
            obj.get("model_type")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            c.error(
                "architectures",
                "the config names no architecture (`architectures` or `model_type`)".into(),
                &format!("stasim lowers {}", supported()),
            )
        })?;
    let name = Path::new(path)
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(|| arch.clone(), |n| n.to_string_lossy().into_owned());
    let bert = arch.starts_with("Bert") || arch == "bert";
    if LLAMA.contains(&arch.as_str()) {
        let (d, h) = (
            c.count("hidden_size", None)?,
            c.count("num_attention_heads", None)?,
        );
        let kv_heads = c.count("num_key_value_heads", Some(h))?;
        if !h.is_multiple_of(kv_heads) {
            return Err(c.error(
                "num_key_value_heads",
                format!("{kv_heads} key/value heads do not divide {h} attention heads"),
                "grouped-query attention shares each key/value head among heads / kv_heads query heads",
            ));
        }
        if c.obj.get("head_dim").is_none() && !d.is_multiple_of(h) {
            return Err(c.error(
                "hidden_size",
                format!("hidden_size {d} is not a multiple of {h} heads and no head_dim is given"),
                "give head_dim",
            ));
        }
        let head_dim = c.count("head_dim", Some(d / h))?;
        Ok(ModelShape {
            name,
            hidden: d,
            heads: h,
            ffn: c.count("intermediate_size", None)?,
            layers: c.count("num_hidden_layers", None)?,
            default_seq: 128,
            causal: true,
            decoder: Some(Decoder {
                kv_heads,
                head_dim,
                vocab: c.count("vocab_size", None)?,
                tied_embeddings: c.flag("tie_word_embeddings", false)?,
                qkv_bias: arch == "Qwen2ForCausalLM" || c.flag("attention_bias", false)?,
                positions: Positions::Rotary {
                    theta: c.float("rope_theta", 10000.0)?,
                },
                norm_eps: c.float("rms_norm_eps", 1e-6)?,
                max_context: c.count("max_position_embeddings", Some(2048))?,
            }),
        })
    } else if GPT2.contains(&arch.as_str()) {
        let d = c.count("n_embd", None)?;
        let h = c.count("n_head", None)?;
        Ok(ModelShape {
            name,
            hidden: d,
            heads: h,
            ffn: c.count("n_inner", Some(4 * d))?,
            layers: c.count("n_layer", None)?,
            default_seq: 128,
            causal: true,
            decoder: None,
        })
    } else if bert {
        Ok(ModelShape {
            name,
            hidden: c.count("hidden_size", None)?,
            heads: c.count("num_attention_heads", None)?,
            ffn: c.count("intermediate_size", None)?,
            layers: c.count("num_hidden_layers", None)?,
            default_seq: 128,
            causal: false,
            decoder: None,
        })
    } else {
        Err(c.error(
            "architectures",
            format!("stasim cannot lower architecture `{arch}`"),
            &format!("supported: {}", supported()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's config.json (the keys stasim reads, as published).
    const SMOLLM2: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "hidden_size": 576,
  "intermediate_size": 1536,
  "max_position_embeddings": 8192,
  "num_attention_heads": 9,
  "num_hidden_layers": 30,
  "num_key_value_heads": 3,
  "rms_norm_eps": 1e-05,
  "rope_theta": 100000,
  "tie_word_embeddings": true,
  "vocab_size": 49152
}"#;

    #[test]
    fn a_llama_config_gives_the_preset_shape() {
        let m = parse(SMOLLM2, "smollm2/config.json").unwrap();
        let mut p = super::super::preset("smollm2-135m").unwrap();
        p.name = "smollm2".into();
        assert_eq!(m, p);
    }

    #[test]
    fn an_unknown_architecture_names_itself_and_the_supported_list() {
        let e = parse(r#"{"architectures": ["MambaForCausalLM"]}"#, "c.json").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("MambaForCausalLM") && s.contains("Qwen2ForCausalLM"),
            "{s}"
        );
    }

    #[test]
    fn a_bad_value_is_reported_at_its_line_and_column() {
        let text = SMOLLM2.replace("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4");
        let s = parse(&text, "c.json").unwrap_err().to_string();
        assert!(
            s.contains("c.json:8:3") && s.contains("do not divide"),
            "{s}"
        );
        let text = SMOLLM2.replace("\"hidden_size\": 576", "\"hidden_size\": -1");
        let s = parse(&text, "c.json").unwrap_err().to_string();
        assert!(s.contains("c.json:3:3") && s.contains("hidden_size"), "{s}");
        let s = parse("{\n  \"a\": ", "c.json").unwrap_err().to_string();
        assert!(s.contains("c.json:2:"), "{s}");
    }
}
