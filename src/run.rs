//! One STA run: resolve the workload (topology `workload:` block, then command-line
//! overrides, then defaults), build the topology, simulate, and build the report.

use std::time::Instant;

use crate::error::Error;
use crate::kernel::SimTime;
use crate::report::{self, Report};
use crate::topology::{InputError, Origin, Topology};
use crate::trace::{TraceInfo, TraceObserver, TraceOptions};
use crate::workload::{self, Patterns, Workload};

/// Workload settings from the command line; `None` keeps the topology's (or the default).
#[derive(Clone, Debug, Default)]
pub struct WorkloadArgs {
    /// Model preset.
    pub model: Option<String>,
    /// Sequence length.
    pub seq: Option<i64>,
    /// Batch.
    pub batch: Option<i64>,
    /// Layers.
    pub layers: Option<i64>,
    /// Pattern(s).
    pub pattern: Option<String>,
    /// A pruned `.stanm` file: model shape and every layer's patterns come from it.
    pub checkpoint: Option<std::path::PathBuf>,
    /// With `checkpoint`: the family member to run (default the densest).
    pub member: Option<String>,
    /// A decoder's decode step at this context (tokens already cached) instead of the
    /// prefill of `seq` tokens.
    pub context: Option<i64>,
}

/// A functional run's settings (`stasim run --functional`).
#[derive(Clone, Debug)]
pub struct FunctionalArgs {
    /// Seed of the input (and of the weights, for presets).
    pub seed: u64,
    /// Tolerance on the output's relative error.
    pub tolerance: f64,
}

/// Builds the data plane of a functional run: the checkpoint's weights (with
/// `--checkpoint`), else seeded weights pruned to the workload's patterns.
pub fn data_plane(
    w: &Workload,
    args: &WorkloadArgs,
    f: &FunctionalArgs,
) -> Result<crate::functional::Shared, InputError> {
    if let Some(dec) = &w.model.decoder
        && crate::model::decoder::Family::of(dec) == crate::model::decoder::Family::GPT2
    {
        return Err(InputError::new(
            "--functional does not run GPT-2's decode steps yet (its values follow the post-LN prefill only)",
            Origin::CommandLine("--functional".into()),
            "",
        )
        .with_hint("drop --context for a functional GPT-2 prefill, or use a Llama-family model"));
    }
    check_functional_size(w, "--seq or --batch")?;
    let (weights, source, origin) = functional_weights(w, args, f)?;
    let plane = crate::functional::DataPlane::new(w, weights, f.seed, source)
        .map_err(|m| functional_error(m, origin))?;
    Ok(std::sync::Arc::new(std::sync::Mutex::new(plane)))
}

/// An error of a functional run's weights or inputs.
fn functional_error(m: String, origin: Origin) -> InputError {
    InputError::new(m, origin, "")
        .with_hint("functional runs need 16-bit values and a checkpoint from `stasim prune`")
}

/// Refuses a functional run of `w` that would hold more than [`FUNCTIONAL_MAX_VALUES`]
/// values; `lower` names what else to lower.
fn check_functional_size(w: &Workload, lower: &str) -> Result<(), InputError> {
    let values = functional_values(w);
    if values > FUNCTIONAL_MAX_VALUES {
        return Err(InputError::new(
            format!(
                "a functional run of this workload holds about {values} values (weights of {} layers, the embedding and lm_head, and their activations), more than the limit of {FUNCTIONAL_MAX_VALUES}",
                w.layers
            ),
            Origin::CommandLine("--functional".into()),
            "",
        )
        .with_hint(format!("functional runs are for small models and a few layers: lower --layers, {lower}")));
    }
    Ok(())
}

/// The weights of a functional run: the checkpoint's (an encoder's or a decoder's `.stanm`),
/// else seeded; with where they came from.
fn functional_weights(
    w: &Workload,
    args: &WorkloadArgs,
    f: &FunctionalArgs,
) -> Result<(crate::functional::weights::ModelWeights, String, Origin), InputError> {
    use crate::functional::llama_weights::LlamaWeights;
    use crate::functional::weights::ModelWeights;
    let (weights, source, origin) = match &args.checkpoint {
        Some(path) => {
            let member = args
                .member
                .as_deref()
                .map(workload::Pattern::parse)
                .transpose()
                .map_err(|e| {
                    InputError::new(
                        format!("bad --member: {e}"),
                        Origin::CommandLine("--member".into()),
                        "",
                    )
                })?;
            let weights = if w.model.decoder.is_some() {
                LlamaWeights::from_stanm(path, member, w).map(ModelWeights::decoder)
            } else {
                ModelWeights::from_stanm(path, member, w.layers)
            };
            (
                weights,
                path.display().to_string(),
                Origin::CommandLine(format!("--checkpoint {}", path.display())),
            )
        }
        None => (
            ModelWeights::seeded(w, f.seed),
            format!("seeded (seed {})", f.seed),
            Origin::CommandLine("--functional".into()),
        ),
    };
    let weights = weights.map_err(|m| functional_error(m, origin.clone()))?;
    Ok((weights, source, origin))
}

/// Most values a functional run may hold (weights, activations and the reference's
/// attention probabilities): 2^27, about 1 GiB at 8 bytes each.
pub const FUNCTIONAL_MAX_VALUES: u128 = 1 << 27;

/// Values a functional run of `w` holds: every simulated layer's weights, and per batch
/// element and layer its activations and attention probabilities (`h x rows x keys`; a
/// prefill's rows and keys are its `s` tokens, a decode step's one row attends to `context +
/// 1` keys). An encoder's layer: weights `4 d^2 + 2 d f`, activations `rows (6 d + f)`. A
/// decoder's: weights `W d + d h dh + 3 d f` (`W = (h + 2 hkv) dh`), activations `rows (4 d
/// + W + h dh + 3 f)` and its KV cache `2 hkv dh keys`; and once, the embedding table and an
/// untied lm_head (`V d` each) and the logits (`V` a sequence).
fn functional_values(w: &Workload) -> u128 {
    let (s, b, l) = (u128::from(w.seq), u128::from(w.batch), u128::from(w.layers));
    let (d, f, h) = (
        u128::from(w.model.hidden),
        u128::from(w.model.ffn),
        u128::from(w.model.heads),
    );
    let (rows, keys) = match w.phase {
        workload::Phase::Prefill => (s, s),
        workload::Phase::Decode { context } => (1, u128::from(context) + 1),
    };
    let (weights, acts, once) = match &w.model.decoder {
        None => (
            4 * d * d + 2 * d * f,
            rows * (6 * d + f) + h * rows * keys,
            0,
        ),
        Some(dec) => {
            let (hkv, dh, v) = (
                u128::from(dec.kv_heads),
                u128::from(dec.head_dim),
                u128::from(dec.vocab),
            );
            let width = (h + 2 * hkv) * dh;
            let tables = if dec.tied_embeddings { 1 } else { 2 };
            (
                width * d + d * h * dh + 3 * d * f,
                rows * (4 * d + width + h * dh + 3 * f) + h * rows * keys + 2 * hkv * dh * keys,
                tables * v * d + b * v,
            )
        }
    };
    l.saturating_mul(weights.saturating_add(b.saturating_mul(acts)))
        .saturating_add(once)
}

/// The prefill of `w` (its `seq` seeded tokens a sequence) and `generate` greedy decode
/// steps with values through the engine, each run checked against the f64 reference
/// ([`crate::functional::EngineGeneration`]). Every run is bounded as a functional run is
/// (the last step, the longest context, included).
pub fn functional_generation(
    topo: &Topology,
    w: &Workload,
    args: &WorkloadArgs,
    f: &FunctionalArgs,
    generate: u64,
) -> Result<crate::functional::EngineGeneration, Error> {
    use crate::functional::{DataPlane, DecoderInputs, EngineRun, generate::argmax};
    let Some(dec) = &w.model.decoder else {
        let gpt2 = crate::model::gpt2::as_decoder(&w.model).is_some();
        let (msg, hint) = if gpt2 {
            (
                format!(
                    "--functional runs `{}`'s prefill only, not its decode steps",
                    w.model.name
                ),
                "drop --functional for a timing generation, or --generate for a functional prefill",
            )
        } else {
            (
                format!("`{}` is not a decoder: --generate needs one", w.model.name),
                "use a decoder: smollm2-135m, a config.json or a .stanm pruned from a GGUF",
            )
        };
        return Err(Error::Input(
            InputError::new(msg, Origin::CommandLine("--generate".into()), "").with_hint(hint),
        ));
    };
    let step_of = |t: u64| Workload {
        phase: workload::Phase::Decode { context: w.seq + t },
        ..w.clone()
    };
    check_functional_size(w, "--prompt or --batch")?;
    if generate > 0 {
        check_functional_size(&step_of(generate - 1), "--prompt, --generate or --batch")?;
    }
    let (mut weights, source, origin) = functional_weights(w, args, f)?;
    let prompts = crate::functional::dataplane::seeded_tokens(w, dec.vocab as usize, f.seed);
    let mut inputs = DecoderInputs {
        tokens: prompts.clone(),
        cache: None,
    };
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let mut runs = Vec::new();
    for t in 0..=generate {
        let run_w = if t == 0 { w.clone() } else { step_of(t - 1) };
        let dp = DataPlane::with_inputs(&run_w, weights, f.seed, source.clone(), Some(inputs))
            .map_err(|m| functional_error(m, origin.clone()))?;
        let plane = std::sync::Arc::new(std::sync::Mutex::new(dp));
        let outcome = simulate(topo, &run_w, None, None, Some((&plane, f.tolerance)))?;
        let functional = outcome
            .report
            .functional
            .ok_or_else(|| Error::Failed("a functional run without a functional report".into()))?;
        let dp = std::sync::Arc::try_unwrap(plane)
            .map_err(|_| Error::Failed("the data plane is still shared after the run".into()))?
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        for (seq, l) in tokens.iter_mut().zip(dp.logits()) {
            let l: Vec<f64> = l.iter().map(|&x| f64::from(x)).collect();
            seq.push(argmax(&l));
        }
        runs.push(EngineRun {
            run: if t == 0 {
                "prefill".into()
            } else {
                format!("step {}", t - 1)
            },
            context: match run_w.phase {
                workload::Phase::Prefill => 0,
                workload::Phase::Decode { context } => context,
            },
            cycles: outcome.report.total_cycles,
            functional,
        });
        inputs = DecoderInputs {
            tokens: tokens.iter().map(|s| vec![s[s.len() - 1]]).collect(),
            cache: Some(dp.kv_cache()),
        };
        weights = dp.into_weights();
    }
    Ok(crate::functional::EngineGeneration {
        weights: source,
        tolerance: f.tolerance,
        prompts,
        tokens,
        passed: runs.iter().all(|r| r.functional.passed),
        runs,
    })
}

/// A finished run.
pub struct Outcome {
    /// The report (deterministic).
    pub report: Report,
    /// Wall seconds of the simulation phase (not part of the report).
    pub wall_s: f64,
    /// Kernel events handled.
    pub events: u64,
}

fn pick<T: Clone>(
    cli: &Option<T>,
    file: &Option<crate::topology::raw::Located<T>>,
    cli_flag: &str,
) -> Option<(T, Origin)> {
    match (cli, file) {
        (Some(v), _) => Some((v.clone(), Origin::CommandLine(cli_flag.to_owned()))),
        (None, Some(l)) => Some((l.value.clone(), l.origin.clone())),
        (None, None) => None,
    }
}

/// A workload count in `1..=max`, with the place it came from.
fn count_in(
    v: Option<(i64, Origin)>,
    key: &str,
    max: u64,
) -> Result<Option<(u64, Origin)>, InputError> {
    match v {
        None => Ok(None),
        Some((x, origin)) if x >= 1 && x as u64 <= max => Ok(Some((x as u64, origin))),
        Some((x, origin)) => Err(InputError::new(
            if x < 1 {
                format!("`{key}` = {x} must be at least 1")
            } else {
                format!("`{key}` = {x} is above the limit of {max}")
            },
            origin,
            format!("workload.{key}"),
        )
        .with_hint(format!("give a {key} in 1..={max}"))),
    }
}

/// Resolves the workload of a run.
pub fn resolve_workload(topo: &Topology, args: &WorkloadArgs) -> Result<Workload, InputError> {
    if let Some(path) = &args.checkpoint {
        return checkpoint_workload(topo, args, path);
    }
    if let Some(m) = &args.member {
        return Err(InputError::new(
            format!("--member {m} needs --checkpoint"),
            Origin::CommandLine(format!("--member {m}")),
            "",
        )
        .with_hint(
            "--member picks a member of a pruned family in a `.stanm` file; give --checkpoint FILE, or use --pattern",
        ));
    }
    let wd = &topo.workload;
    let (model_name, model_origin) =
        pick(&args.model, &wd.model, "--model").unwrap_or(("bert-base".into(), Origin::Builtin));
    let model = if workload::hf::is_config_path(&model_name) {
        workload::hf::load(std::path::Path::new(&model_name), &model_origin)?
    } else {
        workload::preset(&model_name).ok_or_else(|| {
            InputError::new(
                format!("unknown model `{model_name}`"),
                model_origin.clone(),
                "workload.model",
            )
            .with_hint(format!(
                "{}; or give the path of a Hugging Face config.json",
                crate::topology::error::suggestion(
                    &model_name,
                    &workload::preset_names(),
                    "models",
                )
            ))
        })?
    };
    // The topology's `seq` and `layers` were chosen for its `model` (bert-base when it names
    // none): another model given on the command line runs at its own preset length and
    // depth (DeiT-small at s = 197) unless `--seq` / `--layers` say otherwise.
    let file_model = wd.model.as_ref().map_or("bert-base", |l| l.value.as_str());
    let same_model = model.name == file_model;
    let file_shape =
        |v: &Option<crate::topology::raw::Located<i64>>| v.clone().filter(|_| same_model);
    let seq_pick = count_in(
        pick(&args.seq, &file_shape(&wd.seq), "--seq"),
        "seq",
        workload::MAX_SEQ,
    )?;
    let batch_pick = count_in(
        pick(&args.batch, &wd.batch, "--batch"),
        "batch",
        workload::MAX_BATCH,
    )?;
    let layers_pick = pick(&args.layers, &file_shape(&wd.layers), "--layers");
    if let Some((l, origin)) = &layers_pick
        && *l > model.layers as i64
    {
        return Err(InputError::new(
            format!("`layers` = {l} but {} has {}", model.name, model.layers),
            origin.clone(),
            "workload.layers",
        )
        .with_hint(format!("give layers in 1..={}", model.layers)));
    }
    let layers = count_in(layers_pick, "layers", model.layers)?.map_or(model.layers, |x| x.0);
    // Where the size came from, for an error about the run's total work.
    let size_origin = seq_pick
        .as_ref()
        .or(batch_pick.as_ref())
        .map_or(Origin::Builtin, |x| x.1.clone());
    let seq = seq_pick.map_or(model.default_seq, |x| x.0);
    let batch = batch_pick.map_or(1, |x| x.0);
    let (pattern_text, pattern_origin) =
        pick(&args.pattern, &wd.pattern, "--pattern").unwrap_or(("2:4".into(), Origin::Builtin));
    let patterns = Patterns::parse(&pattern_text).map_err(|msg| {
        InputError::new(format!("bad pattern: {msg}"), pattern_origin, "workload.pattern")
            .with_hint("write N:M with 1 <= N <= M and M >= 2 (e.g. 2:4), `dense`, or qkv=..,proj=..,ffn1=..,ffn2=..")
    })?;
    let value_bits = match &wd.value_bits {
        None => 16,
        Some(l) if crate::workload::VALUE_BITS.contains(&(l.value as u64)) => l.value as u64,
        Some(l) => {
            return Err(InputError::new(
                format!("`value_bits` = {} is not supported", l.value),
                l.origin.clone(),
                "workload.value_bits",
            )
            .with_hint("16 (fixed point, the default) or 8"));
        }
    };
    // A decode step of GPT-2 runs its pre-LN decoder lowering (its prefill stays post-LN).
    let model = match args.context {
        Some(_) => crate::model::gpt2::as_decoder(&model).unwrap_or(model),
        None => model,
    };
    let phase = phase_of(args.context, &model)?;
    let w = Workload {
        model,
        seq,
        batch,
        layers,
        patterns,
        per_layer: Vec::new(),
        value_bits,
        phase,
    };
    w.validate().map_err(|m| {
        InputError::new(m, size_origin, "workload")
            .with_hint("lower --seq, --batch or --layers (or the `workload:` block)")
    })?;
    Ok(w)
}

/// The phase `--context` asks for: the prefill, or a decode step of `model` (a decoder) with
/// that many tokens cached.
fn phase_of(
    context: Option<i64>,
    model: &workload::ModelShape,
) -> Result<workload::Phase, InputError> {
    let Some(c) = context else {
        return Ok(workload::Phase::Prefill);
    };
    let origin = Origin::CommandLine(format!("--context {c}"));
    if !(0..workload::MAX_SEQ as i64).contains(&c) {
        return Err(InputError::new(
            format!("`context` = {c} is not in 0..{}", workload::MAX_SEQ),
            origin,
            "workload.context",
        )
        .with_hint("the tokens already in the KV cache, e.g. --context 128"));
    }
    let Some(dec) = &model.decoder else {
        return Err(InputError::new(
            format!("--context {c}: `{}` is an encoder: it has no decode steps", model.name),
            origin,
            "workload.context",
        )
        .with_hint("use a decoder: gpt2-small, smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, a config.json, or a .stanm pruned from a GGUF"));
    };
    if let Some(limit) = crate::model::decoder::Family::of(dec).position_limit(dec)
        && c as u64 >= limit
    {
        return Err(InputError::new(
            format!(
                "--context {c}: `{}` has {limit} learned positions, so a step sees at most {} cached tokens and itself",
                model.name,
                limit - 1
            ),
            origin,
            "workload.context",
        )
        .with_hint(format!("give --context in 0..={}", limit - 1)));
    }
    Ok(workload::Phase::Decode { context: c as u64 })
}

/// The workload of a pruned checkpoint: its shapes and per-layer patterns.
fn checkpoint_workload(
    topo: &Topology,
    args: &WorkloadArgs,
    path: &std::path::Path,
) -> Result<Workload, InputError> {
    let origin = Origin::CommandLine(format!("--checkpoint {}", path.display()));
    if args.pattern.is_some() || args.model.is_some() {
        return Err(InputError::new(
            "--checkpoint gives the model and its patterns; drop --model / --pattern",
            origin,
            "",
        )
        .with_hint("use --member to pick a member of a pruned family"));
    }
    let member = match &args.member {
        None => None,
        Some(m) => Some(crate::workload::Pattern::parse(m).map_err(|e| {
            InputError::new(format!("bad --member: {e}"), origin.clone(), "")
                .with_hint("e.g. --member 2:8")
        })?),
    };
    let (model, per_layer) = crate::workload::stanm::load_model(path, member).map_err(|m| {
        InputError::new(m, origin.clone(), "").with_hint("give a file written by `stasim prune`")
    })?;
    let base = resolve_workload(
        topo,
        &WorkloadArgs {
            model: None,
            checkpoint: None,
            member: None,
            pattern: Some("dense".into()),
            layers: None,
            // The phase is the checkpoint model's (the base is the topology's model).
            context: None,
            ..args.clone()
        },
    )?;
    let layers = match args.layers {
        None => model.layers,
        Some(l) if l >= 1 && (l as u64) <= model.layers => l as u64,
        Some(l) => {
            return Err(InputError::new(
                format!("--layers {l}: the checkpoint has {}", model.layers),
                origin,
                "",
            ));
        }
    };
    // `base` checked a given --seq already (1..=MAX_SEQ).
    let seq = args.seq.map_or(model.default_seq, |s| s as u64);
    let phase = phase_of(args.context, &model)?;
    let w = Workload {
        patterns: per_layer.first().copied().unwrap_or(base.patterns),
        per_layer,
        model,
        layers,
        seq,
        phase,
        ..base
    };
    w.validate().map_err(|m| InputError::new(m, origin, ""))?;
    Ok(w)
}

/// Builds `topo` for a run of `w` (`None`: a topology without a controller), with the data
/// plane of a functional run if there is one, and resolves and checks its DRAM placements
/// ([`check_memory`]): every run, check and sweep point builds through here.
pub fn build(
    topo: &Topology,
    w: Option<&Workload>,
    functional: Option<&crate::functional::Shared>,
) -> Result<crate::kernel::Simulation<crate::txn::Transaction>, InputError> {
    let mut sim = topo.build_with(w, functional)?;
    check_memory(topo, w, &mut sim)?;
    Ok(sim)
}

/// Checks that every DRAM of a built simulation holds the tensors its controller placed
/// (else their addresses would wrap into other tensors' rows), and places each off-chip
/// softmax's score scratch area ([`place_scratch`]).
pub fn check_memory(
    topo: &Topology,
    w: Option<&Workload>,
    sim: &mut crate::kernel::Simulation<crate::txn::Transaction>,
) -> Result<(), InputError> {
    let footprint = topo
        .modules
        .iter()
        .enumerate()
        .filter_map(|(i, _)| {
            sim.actor_any(crate::kernel::ActorId(i as u32))?
                .downcast_ref::<crate::sta::controller::Controller>()
        })
        .map(|c| c.planned_footprint_bytes())
        .max();
    if let Some(footprint) = footprint {
        for (i, m) in topo.modules.iter().enumerate() {
            let Some(d) = dram_of(sim, i) else {
                continue;
            };
            let capacity = d.capacity_bytes();
            if footprint > capacity {
                return Err(InputError::new(
                    format!(
                        "the workload needs {footprint} bytes of DRAM ({} of weights and activations), but `{}` holds {capacity} ({})",
                        mib(footprint),
                        m.name,
                        mib(capacity)
                    ),
                    m.origin.clone(),
                    format!("modules.{}", m.name),
                )
                .with_hint(capacity_hint(&m.name, d.geometry())));
            }
        }
    }
    place_scratch(topo, w, sim, footprint.unwrap_or(0))
}

/// The DRAM that is actor `i`, if it is one.
fn dram_of(
    sim: &crate::kernel::Simulation<crate::txn::Transaction>,
    i: usize,
) -> Option<&crate::sta::dram::Dram> {
    sim.actor_any(crate::kernel::ActorId(i as u32))?
        .downcast_ref::<crate::sta::dram::Dram>()
}

/// `bytes` in MiB, one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// What sets the capacity of DRAM `name`, and what to raise.
fn capacity_hint(name: &str, g: &crate::sta::dram::Geometry) -> String {
    format!(
        "capacity = channels {} x ranks {} x bank_groups {} x banks_per_group {} x rows {} x row_bytes {}: raise `{name}.rows`, `{name}.ranks` or `{name}.channels`, or lower the workload",
        g.channels, g.ranks, g.bank_groups, g.banks_per_group, g.rows, g.row_bytes
    )
}

/// Places the score scratch area of every off-chip softmax in the DRAM its `mem_req`
/// drives: `auto` right after the `footprint` bytes of planned tensors
/// ([`crate::sta::softmax::auto_scratch_addr`]), an explicit `scratch_addr` where it says.
/// The area holds one row block ([`crate::sta::softmax::scratch_bytes`], with the PE
/// array's rows and the workload's sequence length and value width); an area that leaves
/// the DRAM or overlaps the planned tensors is an input error.
fn place_scratch(
    topo: &Topology,
    w: Option<&Workload>,
    sim: &mut crate::kernel::Simulation<crate::txn::Transaction>,
    footprint: u64,
) -> Result<(), InputError> {
    use crate::sta::softmax::{self, Softmax};
    let pe_rows = topo
        .modules
        .iter()
        .filter(|m| m.spec.kind == "pe_array")
        .filter_map(|m| m.params.u64("rows").ok())
        .max()
        .unwrap_or(0);
    let bound = w.map(|w| softmax::scratch_bytes(pe_rows, w.seq, w.value_bits.div_ceil(8)));
    let bytes = bound.unwrap_or(0);
    for (i, m) in topo.modules.iter().enumerate() {
        let id = crate::kernel::ActorId(i as u32);
        let Some(given) = sim
            .actor_any(id)
            .and_then(|a| a.downcast_ref::<Softmax>())
            .filter(|s| s.offchip())
            .map(|_| m.params.auto_u64("scratch_addr").ok().flatten())
        else {
            continue;
        };
        let addr = given.unwrap_or_else(|| softmax::auto_scratch_addr(footprint));
        let end = addr.saturating_add(bytes);
        let dram = topo
            .links
            .iter()
            .find(|l| l.from.module == i && l.from.port == "mem_req")
            .and_then(|l| Some((&topo.modules[l.to.module], dram_of(sim, l.to.module)?)));
        let key = format!("modules.{}.scratch_addr", m.name);
        let area = format!(
            "{addr}..{end} ({bytes} bytes: one row block of {pe_rows} rows x {} scores of {} bytes)",
            w.map_or(0, |w| w.seq),
            w.map_or(0, |w| w.value_bits.div_ceil(8))
        );
        let auto_at = softmax::auto_scratch_addr(footprint);
        if let Some((dm, d)) = dram {
            let capacity = d.capacity_bytes();
            if end > capacity {
                return Err(match given {
                    Some(_) => InputError::new(
                        format!(
                            "`{}.scratch_addr` = {addr}: the score scratch area {area} ends past `{}`, which holds {capacity} bytes ({})",
                            m.name,
                            dm.name,
                            mib(capacity)
                        ),
                        m.param_origin("scratch_addr").clone(),
                        key,
                    )
                    .with_hint(scratch_hint(auto_at, footprint, bytes, capacity)),
                    None => InputError::new(
                        format!(
                            "`{}` holds {capacity} bytes ({}): the planned tensors ({footprint} bytes) and, after them, the score scratch area of `{}` {area} do not fit",
                            dm.name,
                            mib(capacity),
                            m.name
                        ),
                        dm.origin.clone(),
                        format!("modules.{}", dm.name),
                    )
                    .with_hint(capacity_hint(&dm.name, d.geometry())),
                });
            }
        }
        if given.is_some() && addr < footprint {
            return Err(InputError::new(
                format!(
                    "`{}.scratch_addr` = {addr}: the score scratch area {area} overlaps the tensors the controller placed at 0..{footprint}",
                    m.name
                ),
                m.param_origin("scratch_addr").clone(),
                key,
            )
            .with_hint(scratch_hint(
                auto_at,
                footprint,
                bytes,
                dram.map_or(u64::MAX, |(_, d)| d.capacity_bytes()),
            )));
        }
        if let Some(s) = sim
            .actor_any_mut(id)
            .and_then(|a| a.downcast_mut::<Softmax>())
        {
            s.place_scratch(addr, bound);
        }
    }
    Ok(())
}

/// What to give as `scratch_addr` instead.
fn scratch_hint(auto_at: u64, footprint: u64, bytes: u64, capacity: u64) -> String {
    let last = capacity.saturating_sub(bytes);
    if footprint <= last {
        format!(
            "omit `scratch_addr` (or write `auto`) to place it after the tensors, at {auto_at}; or give an address in {footprint}..={last}"
        )
    } else {
        "the DRAM has no room for it after the tensors: raise the DRAM's capacity".to_owned()
    }
}

/// Names for traces: modules, links, and `L{layer}.{op}` for every op of the plan.
fn trace_info(
    topo: &Topology,
    sim: &crate::kernel::Simulation<crate::txn::Transaction>,
) -> TraceInfo {
    let ops = topo
        .modules
        .iter()
        .position(|m| m.spec.kind == "controller")
        .and_then(|i| sim.actor_any(crate::kernel::ActorId(i as u32)))
        .and_then(|a| a.downcast_ref::<crate::sta::controller::Controller>())
        .map(|c| {
            c.ops()
                .iter()
                .map(|o| format!("L{}.{}", o.layer, o.name))
                .collect()
        })
        .unwrap_or_default();
    TraceInfo {
        modules: topo.modules.iter().map(|m| m.name.clone()).collect(),
        links: topo.links.iter().map(|l| topo.link_name(l)).collect(),
        ops,
        period_ps: topo.clock.period().as_ps(),
    }
}

/// Whether `topo` simulates a workload: it has a `controller` to walk one. A topology
/// without one runs only what its modules do by themselves ([`simulate_plain`]).
pub fn runs_workload(topo: &Topology) -> bool {
    topo.modules.iter().any(|m| m.spec.kind == "controller")
}

/// Runs a built simulation with the time limit and traces; returns how it ended and the
/// wall seconds of the run phase.
fn execute(
    topo: &Topology,
    sim: &mut crate::kernel::Simulation<crate::txn::Transaction>,
    max_time: Option<SimTime>,
    trace: Option<&TraceOptions>,
) -> Result<(crate::kernel::RunSummary, f64), Error> {
    if let Some(limit) = max_time {
        sim.set_time_limit(limit);
    }
    if let Some(opts) = trace.filter(|o| o.vcd.is_some() || o.perfetto.is_some()) {
        let links: Vec<crate::kernel::LinkSpec> = sim.link_specs().cloned().collect();
        let obs = TraceObserver::start(opts, trace_info(topo, sim), &links).map_err(|msg| {
            InputError::new(msg, Origin::CommandLine("trace options".into()), "")
                .with_hint("check --vcd / --perfetto paths, --trace-window and --trace-modules")
        })?;
        sim.set_observer(Box::new(obs));
    }
    let t0 = Instant::now();
    let summary = sim.run()?;
    let wall_s = t0.elapsed().as_secs_f64();
    if let Some(mut obs) = sim.take_observer() {
        obs.on_end(summary.end_time).map_err(Error::Output)?;
    }
    Ok((summary, wall_s))
}

/// A finished run of a topology without a workload.
pub struct PlainOutcome {
    /// What ran (deterministic).
    pub report: report::plain::PlainReport,
    /// Wall seconds of the simulation phase (not part of the report).
    pub wall_s: f64,
}

/// Builds and runs `topo`, which simulates no workload (see [`runs_workload`]).
pub fn simulate_plain(
    topo: &Topology,
    max_time: Option<SimTime>,
    trace: Option<&TraceOptions>,
) -> Result<PlainOutcome, Error> {
    let mut sim = build(topo, None, None)?;
    let (summary, wall_s) = execute(topo, &mut sim, max_time, trace)?;
    Ok(PlainOutcome {
        report: report::plain::build(topo, &sim, summary.end_time, summary.events),
        wall_s,
    })
}

/// Builds and runs `topo` on `w`, tracing as `trace` says; with `functional` (a data plane
/// and the tolerance), values flow through the run and the report gets their errors.
pub fn simulate(
    topo: &Topology,
    w: &Workload,
    max_time: Option<SimTime>,
    trace: Option<&TraceOptions>,
    functional: Option<(&crate::functional::Shared, f64)>,
) -> Result<Outcome, Error> {
    let mut sim = build(topo, Some(w), functional.map(|f| f.0))?;
    let (summary, wall_s) = execute(topo, &mut sim, max_time, trace)?;
    let mut report = report::build(topo, &sim, w, summary.end_time);
    if let Some((plane, tolerance)) = functional {
        let dp = crate::functional::lock(plane);
        report.functional = Some(dp.report(tolerance));
    }
    Ok(Outcome {
        report,
        wall_s,
        events: summary.events,
    })
}
