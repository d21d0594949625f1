//! The YAML file as written: serde structs that keep every value's line and column.
//!
//! Unknown keys are errors (`deny_unknown_fields`). Module bodies are free-form maps (their
//! keys depend on the module kind) and are checked against the kind's spec in
//! [`super::validate`].

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::component::Value;

/// A mapping that keeps file order and every key's location, and allows the validator to
/// report repeated keys itself.
#[derive(Debug, Default)]
pub struct OrderedMap<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<OrderedMap<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// A whole topology file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Display name; defaults to the file stem.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Default clock of every module, MHz.
    pub clock_mhz: Spanned<f64>,
    /// Module instances: name -> body (`kind:` plus parameters).
    pub modules: Spanned<OrderedMap<Spanned<OrderedMap<Spanned<Value>>>>>,
    /// Links between ports.
    #[serde(default)]
    pub links: Vec<Spanned<RawLink>>,
    /// Optional workload, so one file describes a whole run.
    #[serde(default)]
    pub workload: Option<RawWorkload>,
    /// Optional energy table (`crate::energy`): key -> value.
    #[serde(default)]
    pub energy: Option<OrderedMap<Spanned<f64>>>,
}

/// The `workload:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Model preset.
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    /// Sequence length.
    #[serde(default)]
    pub seq: Option<Spanned<i64>>,
    /// Batch.
    #[serde(default)]
    pub batch: Option<Spanned<i64>>,
    /// Layers.
    #[serde(default)]
    pub layers: Option<Spanned<i64>>,
    /// N:M pattern(s).
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
    /// Bits per value.
    #[serde(default)]
    pub value_bits: Option<Spanned<i64>>,
}

/// One link as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// `instance.port` of an output.
    pub from: Spanned<String>,
    /// `instance.port` of an input.
    pub to: Spanned<String>,
    /// Capacity in transactions.
    #[serde(default)]
    pub depth: Option<Spanned<i64>>,
    /// Latency in cycles of the sender's clock.
    #[serde(default)]
    pub latency_cycles: Option<Spanned<i64>>,
    /// Bytes per sender cycle; 0 = unlimited.
    #[serde(default)]
    pub width_bytes: Option<Spanned<i64>>,
}

/// A value with the place it came from (a file position or a `--set` argument).
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: super::Origin,
}

/// The file after parsing, before validation; `--set` overrides edit this.
#[derive(Clone, Debug)]
pub struct Document {
    /// Path as given (or `<builtin:NAME>`).
    pub path: String,
    /// `name:`.
    pub name: Option<Located<String>>,
    /// `clock_mhz:`.
    pub clock_mhz: Located<f64>,
    /// Where `modules:` starts.
    pub modules_origin: super::Origin,
    /// `modules:` entries in file order.
    pub modules: Vec<ModuleDoc>,
    /// `links:` in file order.
    pub links: Vec<Located<RawLinkDoc>>,
    /// `workload:` fields, each with its origin.
    pub workload: WorkloadDoc,
    /// `energy:` entries with their origins.
    pub energy: Vec<(Located<String>, Located<f64>)>,
}

/// The `workload:` block with located fields (all optional).
#[derive(Clone, Debug, Default)]
pub struct WorkloadDoc {
    /// `model:`.
    pub model: Option<Located<String>>,
    /// `seq:`.
    pub seq: Option<Located<i64>>,
    /// `batch:`.
    pub batch: Option<Located<i64>>,
    /// `layers:`.
    pub layers: Option<Located<i64>>,
    /// `pattern:`.
    pub pattern: Option<Located<String>>,
    /// `value_bits:`.
    pub value_bits: Option<Located<i64>>,
}

/// One module entry.
#[derive(Clone, Debug)]
pub struct ModuleDoc {
    /// Instance name and where it is defined.
    pub name: Located<String>,
    /// Body entries (`kind`, `clock_mhz`, parameters) in order.
    pub entries: Vec<(Located<String>, Located<Value>)>,
}

/// One link entry with located fields.
#[derive(Clone, Debug)]
pub struct RawLinkDoc {
    /// `from:`.
    pub from: Located<String>,
    /// `to:`.
    pub to: Located<String>,
    /// `depth:`.
    pub depth: Option<Located<i64>>,
    /// `latency_cycles:`.
    pub latency_cycles: Option<Located<i64>>,
    /// `width_bytes:`.
    pub width_bytes: Option<Located<i64>>,
}

impl RawTopology {
    /// Converts to a [`Document`], turning spans into [`super::Origin`]s of file `path`.
    pub fn into_document(self, path: &str) -> Document {
        let at = |s: &serde_saphyr::Location| super::Origin::File {
            path: path.to_owned(),
            line: s.line() as u32,
            column: s.column() as u32,
        };
        fn loc<T>(
            s: Spanned<T>,
            at: &impl Fn(&serde_saphyr::Location) -> super::Origin,
        ) -> Located<T> {
            Located {
                origin: at(&s.referenced),
                value: s.value,
            }
        }
        let modules_origin = at(&self.modules.referenced);
        let wl = self.workload.unwrap_or_default();
        let workload = WorkloadDoc {
            model: wl.model.map(|x| loc(x, &at)),
            seq: wl.seq.map(|x| loc(x, &at)),
            batch: wl.batch.map(|x| loc(x, &at)),
            layers: wl.layers.map(|x| loc(x, &at)),
            pattern: wl.pattern.map(|x| loc(x, &at)),
            value_bits: wl.value_bits.map(|x| loc(x, &at)),
        };
        let energy = self
            .energy
            .map(|m| {
                m.0.into_iter()
                    .map(|(k, v)| (loc(k, &at), loc(v, &at)))
                    .collect()
            })
            .unwrap_or_default();
        Document {
            energy,
            path: path.to_owned(),
            name: self.name.map(|n| loc(n, &at)),
            clock_mhz: loc(self.clock_mhz, &at),
            modules_origin,
            workload,
            modules: self
                .modules
                .value
                .0
                .into_iter()
                .map(|(name, body)| ModuleDoc {
                    name: loc(name, &at),
                    entries: body
                        .value
                        .0
                        .into_iter()
                        .map(|(k, v)| (loc(k, &at), loc(v, &at)))
                        .collect(),
                })
                .collect(),
            links: self
                .links
                .into_iter()
                .map(|l| {
                    let origin = at(&l.referenced);
                    let r = l.value;
                    Located {
                        origin,
                        value: RawLinkDoc {
                            from: loc(r.from, &at),
                            to: loc(r.to, &at),
                            depth: r.depth.map(|x| loc(x, &at)),
                            latency_cycles: r.latency_cycles.map(|x| loc(x, &at)),
                            width_bytes: r.width_bytes.map(|x| loc(x, &at)),
                        },
                    }
                })
                .collect(),
        }
    }
}
