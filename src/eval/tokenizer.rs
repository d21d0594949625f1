//! Tokenisers of the real models: SmolLM2's byte-level BPE and MiniLM's WordPiece.
//!
//! **Byte-level BPE** ([`ByteBpe`], GPT-2's scheme, built from a GGUF's `tokenizer.ggml.tokens`
//! and `tokenizer.ggml.merges`): the text is split into pieces by the pre-tokeniser that
//! `tokenizer.ggml.pre` names; each piece's UTF-8 bytes are written as characters through
//! GPT-2's byte-to-unicode table (the 188 printable bytes `!..~`, `¡..¬`, `®..ÿ` stand for
//! themselves, the other 68 bytes `b` for U+0100 + their index among those 68); then, starting
//! from one symbol per byte, the adjacent pair with the lowest merge rank (its line number in
//! the merges table; leftmost on ties) is merged until no adjacent pair has a rank. Decoding
//! maps each token's characters back to bytes, so `decode(encode(t)) == t` for every UTF-8
//! text whose bytes all have a token of their own (in SmolLM2 all but 21 bytes: six control
//! characters, 0x04 0x06 0x13 0x14 0x16 0x1d, and the lead bytes 0xf1 0xf2 of code points
//! U+40000..U+BFFFF; the others, 0xc0 0xc1 0xf5..0xff, never occur in UTF-8). A byte
//! without a token is dropped, as Hugging Face's BPE and llama.cpp do.
//!
//! Pre-tokenisers (llama.cpp's `llama-vocab.cpp`, `LLAMA_VOCAB_PRE_TYPE_*`, which applies
//! its regexes in sequence, each splitting the pieces of the one before and keeping the
//! text between matches as pieces too):
//! - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
//! - `smollm` (also `starcoder`, `refact`): `\p{N}` first (every digit a piece of its own),
//!   then the `gpt2` pattern; the same as Hugging Face's `Digits(individual_digits)` then
//!   `ByteLevel(use_regex)` of SmolLM2's `tokenizer.json`.
//!
//! Special tokens' text (`<|im_start|>`) is encoded as plain text; a caller adds their ids.
//!
//! **WordPiece** ([`WordPiece`], BERT's, built from a Hugging Face `tokenizer.json` with a
//! `BertNormalizer`, a `BertPreTokenizer`, a `WordPiece` model and a `[CLS] $A [SEP]`
//! template; no padding, no truncation): the added tokens (`[MASK]` ...) are matched in the
//! raw text first; the rest is normalised (control characters dropped, whitespace to a space,
//! a space around each CJK ideograph, accents stripped by NFD and dropping marks `Mn`,
//! lowercase), split at whitespace and around each punctuation character (ASCII punctuation
//! or Unicode `P*`), and each word is cut greedily into the longest vocabulary entries from
//! its start (later ones with the `##` prefix); a word with no such cut, or longer than
//! `max_input_chars_per_word` characters, is one `[UNK]`.

use std::collections::HashMap;
use std::path::Path;

use fancy_regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::Error;
use crate::gguf::Gguf;
use crate::topology::{InputError, Origin};

/// GPT-2's pre-tokeniser pattern (with the final `\s+` that llama.cpp leaves to its
/// between-matches pieces).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values this reader implements.
pub const KNOWN_PRE: &[&str] = &["gpt2", "smollm", "starcoder", "refact"];

/// A bad tokeniser file: what, where, and a hint.
fn bad(path: &Path, key: &str, message: impl Into<String>, hint: &str) -> Error {
    InputError::new(
        message,
        Origin::CommandLine(path.display().to_string()),
        key,
    )
    .with_hint(hint)
    .into()
}

/// GPT-2's byte-to-unicode table: the character each byte is written as.
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
        let code = if printable {
            b as u32
        } else {
            extra += 1;
            0x100 + extra - 1
        };
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    table
}

/// Splits `text` into the matches of `re` and the text between them (no piece is empty).
fn split_keep<'t>(re: &Regex, text: &'t str, out: &mut Vec<&'t str>) {
    let mut last = 0;
    for m in re.find_iter(text) {
        // A backtracking limit hit: keep the rest as one piece (still exact bytes).
        let Ok(m) = m else { break };
        if m.start() > last {
            out.push(&text[last..m.start()]);
        }
        if m.end() > m.start() {
            out.push(m.as_str());
        }
        last = m.end();
    }
    if last < text.len() {
        out.push(&text[last..]);
    }
}

/// A byte-level BPE tokeniser (GPT-2's scheme) with its pre-tokeniser.
#[derive(Debug)]
pub struct ByteBpe {
    tokens: Vec<String>,
    /// The id of each byte's one-character token (SmolLM2's vocabulary lacks 21 bytes:
    /// six control characters and lead bytes that are rare or invalid in UTF-8).
    byte_ids: [Option<u32>; 256],
    /// `(left id, right id)` -> `(rank, merged id)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Each character of the byte-to-unicode table -> its byte.
    char_bytes: HashMap<char, u8>,
    /// The pre-tokeniser's regexes, applied in sequence.
    pre: Vec<Regex>,
    /// `tokenizer.ggml.pre`.
    pub pre_name: String,
    /// `tokenizer.ggml.bos_token_id`, if present.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`, if present.
    pub eos_id: Option<u32>,
}

impl ByteBpe {
    /// Reads the tokeniser of the GGUF file at `path`.
    pub fn from_gguf_file(path: &Path) -> Result<ByteBpe, Error> {
        let g = Gguf::open(path)?;
        ByteBpe::from_gguf(&g)
    }

    /// The tokeniser of an opened GGUF file.
    pub fn from_gguf(g: &Gguf) -> Result<ByteBpe, Error> {
        let path = g.path();
        let model = g.require_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(bad(
                path,
                "tokenizer.ggml.model",
                format!("tokenizer model `{model}` is not byte-level BPE"),
                "only `gpt2` (byte-level BPE) GGUF tokenisers are read",
            ));
        }
        let pre_name = g.get_str("tokenizer.ggml.pre").unwrap_or("gpt2").to_owned();
        let pre = match pre_name.as_str() {
            "gpt2" => vec![GPT2_PATTERN],
            "smollm" | "starcoder" | "refact" => vec![r"\p{N}", GPT2_PATTERN],
            other => {
                return Err(bad(
                    path,
                    "tokenizer.ggml.pre",
                    format!("pre-tokeniser `{other}` is not implemented"),
                    &format!("known: {}", KNOWN_PRE.join(", ")),
                ));
            }
        };
        let pre = pre
            .into_iter()
            .map(|p| Regex::new(p).map_err(|e| Error::Failed(format!("regex {p}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = g.require_str_array("tokenizer.ggml.tokens")?;
        let merges = g.require_str_array("tokenizer.ggml.merges")?;
        let id_of: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u32))
            .collect();
        let table = byte_to_char();
        let mut byte_ids = [None; 256];
        for (b, c) in table.iter().enumerate() {
            byte_ids[b] = id_of.get(c.to_string().as_str()).copied();
        }
        if byte_ids.iter().all(Option::is_none) {
            return Err(bad(
                path,
                "tokenizer.ggml.tokens",
                "no byte has a token of its own",
                "a byte-level BPE vocabulary has a token for (almost) each of the 256 bytes",
            ));
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let key = format!("tokenizer.ggml.merges[{rank}]");
            let hint = "each merge is two tokens separated by one space";
            let (l, r) = m
                .split_once(' ')
                .ok_or_else(|| bad(path, &key, format!("merge `{m}` has no space"), hint))?;
            let find = |t: &str| {
                id_of.get(t).copied().ok_or_else(|| {
                    bad(
                        path,
                        &key,
                        format!("merge `{m}`: `{t}` is not a token"),
                        hint,
                    )
                })
            };
            let (li, ri, mi) = (find(l)?, find(r)?, find(&format!("{l}{r}"))?);
            // The first (lowest-rank) line of a repeated pair wins.
            merge_map.entry((li, ri)).or_insert((rank as u32, mi));
        }
        let id = |k: &str| g.get_u64(k).and_then(|v| u32::try_from(v).ok());
        Ok(ByteBpe {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            byte_ids,
            merges: merge_map,
            char_bytes: table
                .iter()
                .enumerate()
                .map(|(b, c)| (*c, b as u8))
                .collect(),
            pre,
            pre_name,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
        })
    }

    /// The number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The text of token `id` (in the byte-to-unicode writing), if it exists.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The pre-tokeniser's pieces of `text`.
    pub fn pieces<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut pieces = vec![text];
        for re in &self.pre {
            let mut next = Vec::with_capacity(pieces.len());
            for p in pieces {
                split_keep(re, p, &mut next);
            }
            pieces = next;
        }
        pieces
    }

    /// The bytes that have no token (dropped by [`ByteBpe::encode`]).
    pub fn missing_bytes(&self) -> Vec<u8> {
        (0..=255u8)
            .filter(|&b| self.byte_ids[b as usize].is_none())
            .collect()
    }

    /// The merges of one piece's bytes, by rank; a byte without a token is dropped before
    /// merging (as Hugging Face's BPE without an unknown token does). The candidate pairs wait
    /// in a min-heap keyed by (rank, position of the left symbol), so the lowest rank merges
    /// first and the leftmost on ties, in O(n log n); a popped pair whose symbols changed
    /// since it was pushed is skipped.
    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut ids: Vec<u32> = piece
            .iter()
            .filter_map(|b| self.byte_ids[*b as usize])
            .collect();
        let n = ids.len();
        // Doubly linked list of the live symbols (usize::MAX: none).
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut next: Vec<usize> = (1..=n)
            .map(|i| if i < n { i } else { usize::MAX })
            .collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, ids: &[u32], l: usize, r: usize| {
            if let Some(&(rank, merged)) = self.merges.get(&(ids[l], ids[r])) {
                heap.push(Reverse((rank, l, merged)));
            }
        };
        for i in 1..n {
            push(&mut heap, &ids, i - 1, i);
        }
        while let Some(Reverse((rank, l, merged))) = heap.pop() {
            let r = next[l];
            if !alive[l] || r == usize::MAX {
                continue;
            }
            if self.merges.get(&(ids[l], ids[r])) != Some(&(rank, merged)) {
                continue;
            }
            ids[l] = merged;
            alive[r] = false;
            next[l] = next[r];
            if next[r] != usize::MAX {
                prev[next[r]] = l;
                push(&mut heap, &ids, l, next[r]);
            }
            if prev[l] != usize::MAX {
                push(&mut heap, &ids, prev[l], l);
            }
        }
        out.extend((0..n).filter(|&i| alive[i]).map(|i| ids[i]));
    }

    /// The token ids of `text` (no BOS added).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for p in self.pieces(text) {
            self.encode_piece(p.as_bytes(), &mut ids);
        }
        ids
    }

    /// The bytes `ids` stand for; an unknown id or a character outside the byte table is an
    /// error naming it.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for &id in ids {
            let t = self
                .token(id)
                .ok_or_else(|| format!("token id {id} is not below {}", self.vocab_size()))?;
            for c in t.chars() {
                out.push(*self.char_bytes.get(&c).ok_or_else(|| {
                    format!("token {id} `{t}` has `{c}`, which stands for no byte")
                })?);
            }
        }
        Ok(out)
    }

    /// The text `ids` stand for (invalid UTF-8, from a cut sequence, as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }
}

/// BERT's punctuation: ASCII punctuation or a Unicode `P*` character.
fn is_punctuation(c: char, re: &Regex) -> bool {
    c.is_ascii_punctuation() || re.is_match(c.encode_utf8(&mut [0; 4])).unwrap_or(false)
}

/// The CJK ideograph blocks BERT puts spaces around.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// A BERT WordPiece tokeniser.
#[derive(Debug)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    tokens: Vec<String>,
    /// Added tokens matched in the raw text, longest first: (content, id, special).
    added: Vec<(String, u32, bool)>,
    unk_id: u32,
    /// The prefix of a word's later pieces (`##`).
    prefix: String,
    max_word_chars: usize,
    clean_text: bool,
    chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
    /// Ids before and after the sequence (`[CLS]`, `[SEP]`).
    pub before: Vec<u32>,
    /// Ids after the sequence.
    pub after: Vec<u32>,
    punct: Regex,
    control: Regex,
    mark: Regex,
}

impl WordPiece {
    /// Reads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<WordPiece, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(
                path,
                "",
                format!("cannot read: {e}"),
                "scripts/fetch-minilm.sh puts MiniLM's tokenizer.json in ~/.cache/stasim/minilm",
            )
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            bad(
                path,
                "",
                format!("not JSON: {e}"),
                "a Hugging Face tokenizer.json",
            )
        })?;
        WordPiece::from_json(path, &json)
    }

    /// The tokeniser of a parsed `tokenizer.json` (`path` for messages).
    pub fn from_json(path: &Path, j: &serde_json::Value) -> Result<WordPiece, Error> {
        let want = |key: &str, ty: &str| -> Result<&serde_json::Value, Error> {
            let v = j
                .pointer(key)
                .filter(|v| ty.is_empty() || v.get("type").and_then(|t| t.as_str()) == Some(ty));
            v.ok_or_else(|| {
                bad(
                    path,
                    key,
                    format!("`{key}` is missing or not of type `{ty}`"),
                    "a BERT tokenizer.json: BertNormalizer, BertPreTokenizer, WordPiece",
                )
            })
        };
        let norm = want("/normalizer", "BertNormalizer")?;
        want("/pre_tokenizer", "BertPreTokenizer")?;
        let model = want("/model", "WordPiece")?;
        let flag = |k: &str| norm.get(k).and_then(|v| v.as_bool());
        let lowercase = flag("lowercase").unwrap_or(true);
        let vocab_json = model
            .get("vocab")
            .and_then(|v| v.as_object())
            .ok_or_else(|| {
                bad(
                    path,
                    "/model/vocab",
                    "no vocabulary object",
                    "a WordPiece model",
                )
            })?;
        let mut vocab = HashMap::with_capacity(vocab_json.len());
        let mut tokens = vec![String::new(); vocab_json.len()];
        for (t, id) in vocab_json {
            let id = id
                .as_u64()
                .filter(|&i| (i as usize) < tokens.len())
                .ok_or_else(|| {
                    bad(
                        path,
                        "/model/vocab",
                        format!("`{t}` has a bad id {id}"),
                        "ids 0..n",
                    )
                })?;
            tokens[id as usize] = t.clone();
            vocab.insert(t.clone(), id as u32);
        }
        let str_of = |k: &str, default: &str| {
            model
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or(default)
                .to_owned()
        };
        let unk = str_of("unk_token", "[UNK]");
        let unk_id = *vocab.get(&unk).ok_or_else(|| {
            bad(
                path,
                "/model/unk_token",
                format!("`{unk}` is not in the vocabulary"),
                "",
            )
        })?;
        let mut added: Vec<(String, u32, bool)> = j
            .get("added_tokens")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        let content = t.get("content")?.as_str()?.to_owned();
                        let id = u32::try_from(t.get("id")?.as_u64()?).ok()?;
                        let special = t.get("special").and_then(|s| s.as_bool()) == Some(true);
                        Some((content, id, special))
                    })
                    .filter(|(c, _, _)| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let (before, after) = template(path, j, &vocab)?;
        let re = |p: &str| Regex::new(p).map_err(|e| Error::Failed(format!("regex {p}: {e}")));
        Ok(WordPiece {
            vocab,
            tokens,
            added,
            unk_id,
            prefix: str_of("continuing_subword_prefix", "##"),
            max_word_chars: model
                .get("max_input_chars_per_word")
                .and_then(|v| v.as_u64())
                .unwrap_or(100) as usize,
            clean_text: flag("clean_text").unwrap_or(true),
            chinese_chars: flag("handle_chinese_chars").unwrap_or(true),
            strip_accents: flag("strip_accents").unwrap_or(lowercase),
            lowercase,
            before,
            after,
            punct: re(r"^\p{P}$")?,
            control: re(r"^\p{C}$")?,
            mark: re(r"^\p{Mn}$")?,
        })
    }

    /// The number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// BertNormalizer's text.
    fn normalize(&self, text: &str) -> String {
        let is = |re: &Regex, c: char| re.is_match(c.encode_utf8(&mut [0; 4])).unwrap_or(false);
        let mut s = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean_text {
                let tab_or_newline = matches!(c, '\t' | '\n' | '\r');
                if c == '\0' || c == '\u{fffd}' || (!tab_or_newline && is(&self.control, c)) {
                    continue;
                }
                if tab_or_newline || c.is_whitespace() {
                    s.push(' ');
                    continue;
                }
            }
            if self.chinese_chars && is_cjk(c) {
                s.push(' ');
                s.push(c);
                s.push(' ');
            } else {
                s.push(c);
            }
        }
        if self.strip_accents {
            s = s.nfd().filter(|&c| !is(&self.mark, c)).collect();
        }
        if self.lowercase {
            s = s.chars().flat_map(char::to_lowercase).collect();
        }
        s
    }

    /// The WordPiece ids of one word.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_word_chars {
            out.push(self.unk_id);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let from = chars[start].0;
            let found = (start + 1..=chars.len()).rev().find_map(|end| {
                let to = chars.get(end).map_or(word.len(), |c| c.0);
                let sub = &word[from..to];
                let key = if start > 0 {
                    format!("{}{sub}", self.prefix)
                } else {
                    sub.to_owned()
                };
                self.vocab.get(&key).map(|&id| (end, id))
            });
            let Some((end, id)) = found else {
                out.push(self.unk_id);
                return;
            };
            pieces.push(id);
            start = end;
        }
        out.extend(pieces);
    }

    /// Ids of a stretch of text without added tokens.
    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        let norm = self.normalize(text);
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut Vec<u32>| {
            if !word.is_empty() {
                self.encode_word(word, out);
                word.clear();
            }
        };
        for c in norm.chars() {
            if c.is_whitespace() {
                flush(&mut word, out);
            } else if is_punctuation(c, &self.punct) {
                flush(&mut word, out);
                self.encode_word(c.encode_utf8(&mut [0; 4]), out);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, out);
    }

    /// The ids of `text` without `[CLS]` and `[SEP]`.
    pub fn encode_bare(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut plain_from = 0;
        let mut i = 0;
        while i < text.len() {
            let hit = self
                .added
                .iter()
                .find(|(c, _, _)| text[i..].starts_with(c.as_str()));
            if let Some((c, id, _)) = hit {
                self.encode_plain(&text[plain_from..i], &mut ids);
                ids.push(*id);
                i += c.len();
                plain_from = i;
            } else {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        self.encode_plain(&text[plain_from..], &mut ids);
        ids
    }

    /// The ids of `text` with the template's `[CLS]` before and `[SEP]` after.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.before.clone();
        ids.extend(self.encode_bare(text));
        ids.extend(&self.after);
        ids
    }

    /// The text of `ids` without special tokens (Hugging Face's WordPiece decoder): each
    /// piece after the first is glued on without its `##` prefix, or after a space; then,
    /// per piece, a space before `.`, `?`, `!` or `,` is dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        let mut out = String::new();
        let mut first = true;
        for &id in ids {
            if self
                .added
                .iter()
                .any(|(_, a, special)| *a == id && *special)
            {
                continue;
            }
            let t = self
                .tokens
                .get(id as usize)
                .ok_or_else(|| format!("token id {id} is not below {}", self.vocab_size()))?;
            let piece = match t.strip_prefix(&self.prefix) {
                Some(rest) if !first => rest.to_owned(),
                _ if !first => format!(" {t}"),
                _ => t.clone(),
            };
            first = false;
            match piece.as_bytes() {
                [b' ', b'.' | b'?' | b'!' | b',', ..] => out.push_str(&piece[1..]),
                _ => out.push_str(&piece),
            }
        }
        Ok(out)
    }
}

/// The ids of a `[CLS] $A [SEP]`-style single-sequence template.
fn template(
    path: &Path,
    j: &serde_json::Value,
    vocab: &HashMap<String, u32>,
) -> Result<(Vec<u32>, Vec<u32>), Error> {
    let hint = "a TemplateProcessing post-processor such as `[CLS] $A [SEP]`";
    let Some(single) = j
        .pointer("/post_processor/single")
        .and_then(|v| v.as_array())
    else {
        return Err(bad(
            path,
            "/post_processor/single",
            "no single template",
            hint,
        ));
    };
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut seen_seq = false;
    for part in single {
        if part.get("Sequence").is_some() {
            seen_seq = true;
        } else if let Some(name) = part.pointer("/SpecialToken/id").and_then(|v| v.as_str()) {
            let id = *vocab.get(name).ok_or_else(|| {
                bad(
                    path,
                    "/post_processor",
                    format!("`{name}` is not in the vocabulary"),
                    hint,
                )
            })?;
            if seen_seq { &mut after } else { &mut before }.push(id);
        } else {
            return Err(bad(
                path,
                "/post_processor/single",
                "an unknown template part",
                hint,
            ));
        }
    }
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer.json with a ten-entry vocabulary.
    fn tiny() -> WordPiece {
        let vocab = [
            "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "caf", "##e", ".", "the",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), serde_json::json!(i)))
            .collect();
        let j = serde_json::json!({
            "added_tokens": [{"id": 1, "content": "[CLS]", "special": true},
                             {"id": 2, "content": "[SEP]", "special": true}],
            "normalizer": {"type": "BertNormalizer", "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing", "single": [
                {"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}},
                {"SpecialToken": {"id": "[SEP]"}}]},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "max_input_chars_per_word": 9,
                      "vocab": vocab},
        });
        WordPiece::from_json(Path::new("tiny.json"), &j).unwrap()
    }

    #[test]
    fn wordpiece_cuts_longest_first_lowercases_and_strips_accents() {
        let t = tiny();
        // un + ##aff + ##able (9 characters, the most allowed); "CAFÉ" -> "cafe" -> caf +
        // ##e; "." is a word of its own; "thee" -> the + ##e; "xyz" has no cut: [UNK];
        // "unaffables" (10 characters > 9) is [UNK] without trying.
        assert_eq!(
            t.encode("Unaffable\tCAFÉ. thee xyz unaffables"),
            [1, 3, 4, 5, 6, 7, 8, 9, 7, 0, 0, 2]
        );
        assert_eq!(t.encode("[SEP]the"), [1, 2, 9, 2]);
        assert_eq!(
            t.decode(&[1, 3, 4, 5, 6, 7, 8, 2]).unwrap(),
            "unaffable cafe."
        );
        assert!(t.decode(&[10]).is_err());
    }

    #[test]
    fn a_tokenizer_json_of_another_kind_is_an_input_error() {
        let j = serde_json::json!({"model": {"type": "BPE"}});
        let e = WordPiece::from_json(Path::new("bpe.json"), &j).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("BertNormalizer"), "{e}");
    }
}
