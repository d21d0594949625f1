//! The off-chip softmax ablation (`sta-offchip-softmax`): its score scratch area lies inside
//! the DRAM, right after the tensors the controller placed, and an explicit `scratch_addr`
//! that leaves the DRAM or lands on those tensors is refused before the run.

use std::process::Command;
use std::sync::{Arc, Mutex};

use stasim::kernel::{ActorId, LinkId, Observer, SimTime};
use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::sta::controller::Controller;
use stasim::sta::dram::Dram;
use stasim::sta::softmax::Softmax;
use stasim::topology::{self, Source};
use stasim::txn::Transaction;

use crate::support::tmp_dir;

const BIN: &str = env!("CARGO_BIN_EXE_stasim");

/// Every DRAM request sent: (link, address, bytes).
#[derive(Clone, Default)]
struct Requests(Arc<Mutex<Vec<(u32, u64, u64)>>>);

impl Observer<Transaction> for Requests {
    fn on_send(&mut self, _now: SimTime, link: LinkId, msg: &Transaction, _visible: SimTime) {
        if let Transaction::MemReq(r) = msg {
            self.0.lock().unwrap().push((link.0, r.addr, r.bytes));
        }
    }
}

#[test]
fn the_offchip_scratch_area_lies_inside_the_dram_right_after_the_planned_tensors() {
    let src = Source::read("sta-offchip-softmax").unwrap();
    let topo = topology::load(&src, &[]).unwrap();
    let wargs = WorkloadArgs {
        layers: Some(2),
        ..WorkloadArgs::default()
    };
    let w = resolve_workload(&topo, &wargs).unwrap();
    let mut sim = stasim::run::build(&topo, Some(&w), None).unwrap();
    let index = |kind: &str| {
        topo.modules
            .iter()
            .position(|m| m.spec.kind == kind)
            .unwrap()
    };
    let actor = |i: usize| sim.actor_any(ActorId(i as u32)).unwrap();
    let footprint = actor(index("controller"))
        .downcast_ref::<Controller>()
        .unwrap()
        .planned_footprint_bytes();
    let capacity = actor(index("dram"))
        .downcast_ref::<Dram>()
        .unwrap()
        .capacity_bytes();
    let placed = actor(index("softmax"))
        .downcast_ref::<Softmax>()
        .unwrap()
        .scratch_addr();
    // The first 4 KiB boundary after the tensors; one row block of 16 PE rows x 128 scores
    // of 2 bytes.
    let expected = footprint.div_ceil(4096) * 4096;
    assert_eq!(placed, Some(expected));
    let area = 16 * 128 * 2;
    let softmax_link = topo
        .links
        .iter()
        .position(|l| l.from.module == index("softmax") && l.from.port == "mem_req")
        .unwrap() as u32;
    let seen = Requests::default();
    sim.set_observer(Box::new(seen.clone()));
    sim.run().unwrap();
    let requests = seen.0.lock().unwrap();
    let scratch: Vec<_> = requests.iter().filter(|r| r.0 == softmax_link).collect();
    // Two round trips (write, read) per row block: 12 heads x 128 / 16 blocks per layer.
    assert_eq!(scratch.len(), 2 * 2 * 12 * (128 / 16));
    for &&(_, addr, bytes) in &scratch {
        assert_eq!(addr, expected);
        assert!(bytes > 0 && bytes <= area, "a block of {bytes} bytes");
    }
    for &(link, addr, bytes) in requests.iter() {
        assert!(addr + bytes <= capacity, "{addr} + {bytes} past {capacity}");
        if link != softmax_link {
            assert!(
                addr + bytes <= footprint,
                "a tensor at {addr}..{} past the footprint {footprint}",
                addr + bytes
            );
        }
    }
}

/// `sta-offchip-softmax.yaml` with the softmax's line given `scratch_addr: ADDR`, and the
/// 1-based line and column of that value.
fn with_scratch_addr(addr: &str) -> (String, usize, usize) {
    let text = Source::read("sta-offchip-softmax").unwrap().text;
    let mut at = (0, 0);
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if let Some(rest) = l.strip_prefix("  softmax: {") {
                let head = "  softmax: {scratch_addr: ".to_owned();
                at = (i + 1, head.len() + 1);
                format!("{head}{addr}, {rest}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(at.0, 0, "no softmax line");
    (lines.join("\n") + "\n", at.0, at.1)
}

#[test]
fn a_scratch_addr_past_the_dram_or_on_the_tensors_is_refused_before_the_run() {
    let dir = tmp_dir("offchip", "refused");
    // 1 TiB (the old default) is past the 16 GiB DRAM; 4096 lies inside the weights.
    for (addr, msg) in [
        (
            "1099511627776",
            "ends past `dram`, which holds 17179869184 bytes",
        ),
        ("4096", "overlaps the tensors the controller placed at 0.."),
    ] {
        let (text, line, column) = with_scratch_addr(addr);
        let file = dir.join(format!("t{addr}.yaml"));
        std::fs::write(&file, text).unwrap();
        for command in ["run", "check"] {
            let o = Command::new(BIN)
                .args([command, file.to_str().unwrap()])
                .args(if command == "run" {
                    &["--layers", "1"][..]
                } else {
                    &[]
                })
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{command} {addr}: {err}");
            assert!(
                err.contains(msg)
                    && err.contains(&format!("{}:{line}:{column}", file.display()))
                    && err.contains("key: modules.softmax.scratch_addr")
                    && err.contains("hint: omit `scratch_addr` (or write `auto`)"),
                "{command} {addr}: {err}"
            );
        }
    }
    // `auto` (the default, written out) and an address inside the DRAM past the tensors run.
    for set in [
        "softmax.scratch_addr=auto",
        "softmax.scratch_addr=1073741824",
    ] {
        let o = Command::new(BIN)
            .args(["run", "sta-offchip-softmax", "--layers", "1", "--seq", "32"])
            .args(["--set", set])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{set}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
