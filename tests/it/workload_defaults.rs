//! Which sequence length and depth a run gets when the command line does not say: the
//! topology's `workload:` block for the model it names, else the model preset's own.

use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::topology::{self, Source};

/// (seq, layers, model) that `stasim run TOPO` with `args` resolves to.
fn resolved(topo: &str, args: WorkloadArgs) -> (u64, u64, String) {
    let t = topology::load(&Source::read(topo).unwrap(), &[]).unwrap();
    let w = resolve_workload(&t, &args).unwrap_or_else(|e| panic!("{e}"));
    (w.seq, w.layers, w.model.name.clone())
}

fn model(name: &str) -> WorkloadArgs {
    WorkloadArgs {
        model: Some(name.into()),
        ..WorkloadArgs::default()
    }
}

#[test]
fn a_model_given_on_the_command_line_runs_at_its_own_sequence_length() {
    // DeiT-small: 196 patches of a 224 x 224 image plus the class token.
    assert_eq!(
        resolved("sta", model("deit-small")),
        (197, 12, "deit-small".into())
    );
    // sta.yaml's workload says bert-base at s = 128; MiniLM-L6 has 6 layers of its own.
    assert_eq!(
        resolved("sta", model("minilm-l6")),
        (128, 6, "minilm-l6".into())
    );
    // sta-small's block (minilm-l6, s = 32, 1 layer) is not applied to another model.
    assert_eq!(
        resolved("sta-small", model("bert-base")),
        (128, 12, "bert-base".into())
    );
}

#[test]
fn the_topology_workload_applies_to_its_own_model() {
    assert_eq!(
        resolved("sta", WorkloadArgs::default()),
        (128, 12, "bert-base".into())
    );
    assert_eq!(
        resolved("sta-small", WorkloadArgs::default()),
        (32, 1, "minilm-l6".into())
    );
    // Naming the block's own model on the command line changes nothing.
    assert_eq!(
        resolved("sta-small", model("minilm-l6")),
        (32, 1, "minilm-l6".into())
    );
}

#[test]
fn seq_and_layers_on_the_command_line_win() {
    let args = WorkloadArgs {
        seq: Some(64),
        layers: Some(2),
        ..model("deit-small")
    };
    assert_eq!(resolved("sta", args), (64, 2, "deit-small".into()));
}
