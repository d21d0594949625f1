//! Graphviz DOT export of a topology (`stasim graph FILE | dot -Tsvg > t.svg`).
//!
//! Nodes are module instances labelled `name` / `kind` / clock; edges are links labelled
//! `out_port -> in_port` with depth, latency and width when they differ from the defaults.

use std::fmt::Write;

use petgraph::visit::EdgeRef;

use super::Topology;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The topology as DOT text, built from its petgraph graph.
pub fn to_dot(t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&t.name));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];");
    for n in t.graph.node_indices() {
        let m = &t.modules[t.graph[n]];
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\\n{:.0} MHz\"];",
            escape(&m.name),
            escape(&m.name),
            m.spec.kind,
            m.clock.mhz()
        );
    }
    for e in t.graph.edge_references() {
        let l = &t.links[*e.weight()];
        let mut label = format!("{} -> {}\\ndepth {}", l.from.port, l.to.port, l.depth);
        if l.latency_cycles > 0 {
            let _ = write!(label, ", {} cyc", l.latency_cycles);
        }
        if l.width_bytes > 0 {
            let _ = write!(label, ", {} B/cyc", l.width_bytes);
        }
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{}\"];",
            escape(&t.modules[t.graph[e.source()]].name),
            escape(&t.modules[t.graph[e.target()]].name),
            escape(&label).replace("\\\\n", "\\n")
        );
    }
    out.push_str("}\n");
    out
}
