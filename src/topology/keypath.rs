//! Key paths of YAML parse errors: the typed reader reports only a line and column ("invalid
//! i64"); this re-reads the text as untyped YAML and names the key at that place
//! (`links[3].depth`), so an error says which value is wrong.

use std::fmt;

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A mapping key as text (a scalar; `?` for a collection used as a key).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("~".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Key, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Key("?".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Key, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Key("?".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any YAML value, with the place of every key and element.
enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    out.push(entry);
                }
                Ok(Node::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = s.next_element()? {
                    out.push(item);
                }
                Ok(Node::Seq(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn pos(l: &serde_saphyr::Location) -> (u64, u64) {
    (l.line(), l.column())
}

/// The key path (`links[3].depth`, `modules.pe_array.rows`) of the value or key at 1-based
/// `line`, `column` of `text`, if the text is YAML at all.
pub fn at(text: &str, line: u32, column: u32) -> Option<String> {
    let root: Node = serde_saphyr::from_str(text).ok()?;
    let here = (u64::from(line), u64::from(column));
    let mut path = String::new();
    let mut node = &root;
    // Siblings are in document order: the last one starting at or before `here` holds it.
    loop {
        match node {
            Node::Map(entries) => {
                let Some((k, v)) = entries
                    .iter()
                    .take_while(|(k, _)| pos(&k.referenced) <= here)
                    .last()
                else {
                    break;
                };
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.value.0);
                node = &v.value;
            }
            Node::Seq(items) => {
                let Some((i, v)) = items
                    .iter()
                    .enumerate()
                    .take_while(|(_, v)| pos(&v.referenced) <= here)
                    .last()
                else {
                    break;
                };
                path.push_str(&format!("[{i}]"));
                node = &v.value;
            }
            Node::Leaf => break,
        }
    }
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::at;

    const TEXT: &str = "clock_mhz: 1000
modules:
  source: {kind: source, count: 10}
  sink:
    kind: sink
links:
  - {from: source.out, to: sink.in}
  - {from: a.out, to: b.in, depth: 1.5}
";

    #[test]
    fn the_key_path_of_a_place_names_maps_and_list_items() {
        assert_eq!(at(TEXT, 1, 12).as_deref(), Some("clock_mhz"));
        assert_eq!(at(TEXT, 3, 33).as_deref(), Some("modules.source.count"));
        assert_eq!(at(TEXT, 5, 11).as_deref(), Some("modules.sink.kind"));
        assert_eq!(at(TEXT, 8, 36).as_deref(), Some("links[1].depth"));
        assert_eq!(at(TEXT, 7, 5).as_deref(), Some("links[0]"));
        assert_eq!(at("a: [", 1, 4), None, "not YAML");
    }
}
