//! A small on-disk cache of measured values (a simulated latency, an evaluated perplexity)
//! by key, for re-runs of the explorer: a text file whose first line names what the values
//! depend on (a fingerprint: the topology, the workload, the source files' contents, the
//! evaluation settings, stasim's version), then one `key,value` line per value, the value
//! written in Rust's shortest round-trip form so it reads back bit for bit.
//!
//! A file whose fingerprint differs is ignored (and replaced when the cache is saved). A
//! cache can still be stale after a change of stasim's code within one version; the
//! explorer's verification (every frontier point measured again without the cache)
//! catches that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Values by key, and where they are kept.
pub struct Cache {
    path: Option<PathBuf>,
    fingerprint: String,
    values: BTreeMap<String, f64>,
    loaded: usize,
}

impl Cache {
    /// The cache at `path` (`None`: in memory only) for `fingerprint` (one line).
    pub fn open(path: Option<&Path>, fingerprint: &str) -> Cache {
        let mut values = BTreeMap::new();
        if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
            let mut lines = text.lines();
            if lines.next() == Some(fingerprint) {
                for l in lines {
                    if let Some((k, v)) = l.rsplit_once(',')
                        && let Ok(v) = v.parse::<f64>()
                    {
                        values.insert(k.to_owned(), v);
                    }
                }
            }
        }
        Cache {
            path: path.map(Path::to_path_buf),
            fingerprint: fingerprint.to_owned(),
            loaded: values.len(),
            values,
        }
    }

    /// The value of `key`, if cached.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }

    /// Records `value` for `key`.
    pub fn put(&mut self, key: &str, value: f64) {
        self.values.insert(key.to_owned(), value);
    }

    /// The value of `key`: cached (`true`), else measured by `measure` and recorded
    /// (`false`).
    pub fn get_or_measure<E>(
        &mut self,
        key: &str,
        measure: impl FnOnce() -> Result<f64, E>,
    ) -> Result<(f64, bool), E> {
        if let Some(v) = self.get(key) {
            return Ok((v, true));
        }
        let v = measure()?;
        self.put(key, v);
        Ok((v, false))
    }

    /// Values read from the file when opened.
    pub fn loaded(&self) -> usize {
        self.loaded
    }

    /// Writes the cache (atomically; nothing when in memory only).
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut text = format!("{}\n", self.fingerprint);
        for (k, v) in &self.values {
            text.push_str(&format!("{k},{v}\n"));
        }
        crate::io::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_bit_for_bit_and_a_new_fingerprint_starts_empty() {
        let dir = std::env::temp_dir().join(format!("stasim-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.csv");
        let mut c = Cache::open(Some(&path), "# v1");
        let x = 7_325.321_201_000_001_f64;
        c.put("qkv=2:8,proj=dense,ffn1=dense,ffn2=dense", x);
        c.put("b", 1.0 / 3.0);
        c.save().unwrap();
        let c = Cache::open(Some(&path), "# v1");
        assert_eq!(c.loaded(), 2);
        let got = c.get("qkv=2:8,proj=dense,ffn1=dense,ffn2=dense").unwrap();
        assert_eq!(got.to_bits(), x.to_bits());
        assert_eq!(c.get("b").unwrap().to_bits(), (1.0f64 / 3.0).to_bits());
        let c = Cache::open(Some(&path), "# v2");
        assert_eq!((c.loaded(), c.get("b")), (0, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
