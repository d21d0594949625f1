//! The explorer's models: a decoder's dense GGUF and uniformly pruned `.stanm` files of it
//! (each family member one option), and the model of a per-class choice composed from them.
//!
//! Option 0 is dense (the GGUF's f32 weights); each other option is one sparse pattern,
//! taken from the first file (in the order given) that holds it as a member with every
//! class and layer at that pattern. Options are ordered densest first (kept share
//! `N/M` descending, then `M` ascending), whatever the order of the files.
//!
//! **The composition** (an approximation, stated in the report): the model of choice
//! `c = (qkv, proj, ffn1, ffn2)` takes, in every block, Q/K/V from option `c_qkv`'s model,
//! the output projection from `c_proj`'s, gate and up from `c_ffn1`'s and down from
//! `c_ffn2`'s; the embedding, the norms and the lm_head come from the first pruned file
//! (every pruned file of one GGUF stores the same f16 tables and f32 norms: checked at
//! load), or from the GGUF when every class is dense. A calibrated prune of one pattern
//! calibrated each layer on the outputs of layers pruned to that same pattern, so a mixed
//! model's layers were calibrated on slightly different inputs than they now get: the
//! mixed model is what one would get by mixing the uniformly pruned checkpoints, not what a
//! calibrated prune of the mixed pattern would give (likely a little better). A uniform
//! choice is exactly its file's model: its perplexity equals `stasim eval FILE --member P`.

use std::path::{Path, PathBuf};

use super::search::Choice;
use crate::eval::forward::Model;
use crate::functional::llama_weights::LlamaWeights;
use crate::run::{WorkloadArgs, resolve_workload};
use crate::topology::Topology;
use crate::workload::stanm::members;
use crate::workload::{Pattern, Patterns, Workload};

/// One option: a pattern and the model holding it.
pub struct Source {
    /// The pattern (dense for option 0).
    pub pattern: Pattern,
    /// The file it came from (the GGUF for dense).
    pub file: PathBuf,
    model: Model,
}

/// The options of a search.
pub struct Sources {
    /// Option 0 dense, then the sparse patterns, densest first.
    pub options: Vec<Source>,
    /// The model's workload as the first pruned file gives it (its shape; patterns dense).
    pub workload: Workload,
}

/// `(kept share, M)` sort key: densest first.
fn density_order(p: &Pattern) -> (std::cmp::Reverse<u64>, u32) {
    // N/M as a fraction over 2^32, exact enough to order any two patterns of M <= 2^16.
    let share = (u64::from(p.n) << 32) / u64::from(p.m);
    (std::cmp::Reverse(share), p.m)
}

impl Sources {
    /// Loads the dense `gguf` and the members of `files` (only the patterns of `only`, when
    /// given), on `topo`'s shapes. `progress` hears of each model loaded.
    pub fn load(
        topo: &Topology,
        gguf: &Path,
        files: &[PathBuf],
        only: Option<&[Pattern]>,
        progress: &dyn Fn(&str),
    ) -> Result<Sources, String> {
        let first = files
            .first()
            .ok_or("give at least one pruned .stanm file of the model (--from)")?;
        let mut workload = file_workload(topo, first, None)?;
        workload.per_layer.clear();
        workload.patterns = Patterns::uniform(Pattern::DENSE);
        let mut found: Vec<(Pattern, PathBuf)> = Vec::new();
        for f in files {
            for p in members(f)? {
                let wanted = only.is_none_or(|o| o.contains(&p));
                if wanted && !found.iter().any(|(q, _)| *q == p) {
                    found.push((p, f.clone()));
                }
            }
        }
        if let Some(o) = only
            && let Some(p) = o
                .iter()
                .find(|p| !p.is_dense() && !found.iter().any(|(q, _)| q == *p))
        {
            return Err(format!(
                "no file given holds pattern {p} (the files hold {})",
                files
                    .iter()
                    .filter_map(|f| members(f).ok())
                    .flatten()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        found.sort_by_key(|(p, _)| density_order(p));
        progress(&format!("loading the dense model from {}", gguf.display()));
        let dense =
            Model::from_gguf(gguf, &workload).map_err(|m| format!("`{}`: {m}", gguf.display()))?;
        let mut options = vec![Source {
            pattern: Pattern::DENSE,
            file: gguf.to_path_buf(),
            model: dense,
        }];
        for (p, f) in found {
            progress(&format!("loading {p} from {}", f.display()));
            let w = file_workload(topo, &f, Some(p))?;
            let uniform = Patterns::uniform(p);
            if w.per_layer.iter().any(|l| *l != uniform) || w.model.hidden != workload.model.hidden
            {
                return Err(format!(
                    "`{}` member {p} is not {p} in every class and layer of the same model \
                     (the explorer composes uniformly pruned members)",
                    f.display()
                ));
            }
            let named = |m: String| format!("`{}`: {m}", f.display());
            let weights = LlamaWeights::from_stanm(&f, Some(p), &w).map_err(named)?;
            let model = Model::of_workload(&weights, &w).map_err(named)?;
            if let Some(base) = options.get(1)
                && !model.same_tables(&base.model)
            {
                return Err(format!(
                    "`{}` and `{}` store different embeddings or norms: prune every file from \
                     the same checkpoint",
                    f.display(),
                    base.file.display()
                ));
            }
            options.push(Source {
                pattern: p,
                file: f,
                model,
            });
        }
        if options.len() < 2 {
            return Err("the files give no sparse pattern to choose from".into());
        }
        Ok(Sources { options, workload })
    }

    /// The per-class patterns of choice `c`.
    pub fn patterns(&self, c: Choice) -> Patterns {
        Patterns::from_classes(c.map(|o| self.options[o].pattern))
    }

    /// The model of choice `c` (see the module header).
    pub fn model(&self, c: Choice) -> Result<Model, String> {
        let models: Vec<&Model> = self.options.iter().map(|s| &s.model).collect();
        let base = if c == [0; 4] { 0 } else { 1 };
        Model::mixed(&models, c, base)
    }
}

/// The workload of `file` (member `member`, default the densest).
fn file_workload(
    topo: &Topology,
    file: &Path,
    member: Option<Pattern>,
) -> Result<Workload, String> {
    let args = WorkloadArgs {
        checkpoint: Some(file.to_path_buf()),
        member: member.map(|p| p.to_string()),
        ..WorkloadArgs::default()
    };
    let w = resolve_workload(topo, &args).map_err(|e| e.to_string())?;
    if w.model.decoder.is_none() {
        return Err(format!(
            "`{}` is not a decoder: the explorer scores decoders by perplexity",
            file.display()
        ));
    }
    Ok(w)
}
