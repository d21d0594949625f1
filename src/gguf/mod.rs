//! A reader of GGUF files (llama.cpp's model format, versions 2 and 3, little-endian): the
//! header, the metadata key/values of every GGUF value type, the tensor infos, the alignment
//! (`general.alignment`, default 32) and the data section; tensors are read one at a time (a
//! seek and one read of their bytes) and dequantised to f32 by [`dequant`].
//!
//! Layout (all integers little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64`
//! key/value count; each key/value is a string key (`u64` length + UTF-8 bytes), a `u32` value
//! type and the value (an array is a `u32` element type, a `u64` count and the elements); each
//! tensor info is a string name, a `u32` number of dimensions (at most 4), that many `u64`
//! dimensions (`ne[0]` varies fastest), a `u32` ggml type and a `u64` offset from the start of
//! the data section, which begins at the next multiple of the alignment after the infos.
//!
//! A truncated or hostile file is an error, never a panic or a huge allocation: every count
//! and length is checked against the bytes left in the file before anything is allocated
//! (each element of a count needs at least a known number of bytes), arithmetic is checked,
//! arrays nest at most [`MAX_ARRAY_DEPTH`] deep, and every tensor's extent must lie inside the
//! file. Errors name the file, the byte offset and the key or tensor.

pub mod dequant;
pub mod prune;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use dequant::GgmlType;

use crate::topology::{InputError, Origin};

/// The file's first four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The deepest nesting of arrays accepted (arrays of arrays of ...).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// The most dimensions a tensor has (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// A problem reading a GGUF file: which file, where in it, about which key or tensor, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufError {
    /// The file.
    pub path: PathBuf,
    /// The byte offset in the file the problem is at, if it is at one.
    pub offset: Option<u64>,
    /// The metadata key or tensor concerned (empty for the header).
    pub what: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        if !self.what.is_empty() {
            write!(f, " ({})", self.what)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for GgufError {}

impl From<GgufError> for InputError {
    fn from(e: GgufError) -> Self {
        let at = e
            .offset
            .map(|o| format!(" at byte {o}"))
            .unwrap_or_default();
        InputError::new(
            format!("{}{at}: {}", e.path.display(), e.message),
            Origin::CommandLine(e.path.display().to_string()),
            e.what,
        )
    }
}

impl From<GgufError> for crate::Error {
    fn from(e: GgufError) -> Self {
        crate::Error::Input(e.into())
    }
}

/// The type of a metadata value, as its id in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// 0
    U8,
    /// 1
    I8,
    /// 2
    U16,
    /// 3
    I16,
    /// 4
    U32,
    /// 5
    I32,
    /// 6
    F32,
    /// 7 (one byte, 0 or 1)
    Bool,
    /// 8 (`u64` length + UTF-8)
    Str,
    /// 9 (`u32` element type, `u64` count, elements)
    Array,
    /// 10
    U64,
    /// 11
    I64,
    /// 12
    F64,
}

impl ValueType {
    const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::Str,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type with file id `id`.
    pub fn from_id(id: u32) -> Option<ValueType> {
        Self::ALL.get(id as usize).copied()
    }

    /// The fewest bytes a value of this type takes in the file (a string its length, an
    /// array its element type and count): how a count is checked against the file.
    pub fn min_bytes(self) -> u64 {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 | ValueType::Str => 8,
            ValueType::Array => 12,
        }
    }
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `uint8`
    U8(u8),
    /// `int8`
    I8(i8),
    /// `uint16`
    U16(u16),
    /// `int16`
    I16(i16),
    /// `uint32`
    U32(u32),
    /// `int32`
    I32(i32),
    /// `float32`
    F32(f32),
    /// `bool`
    Bool(bool),
    /// `string`
    Str(String),
    /// `array`, stored by element type (a byte array takes a byte per element in memory as in
    /// the file, not a [`Value`] each).
    Array(Array),
    /// `uint64`
    U64(u64),
    /// `int64`
    I64(i64),
    /// `float64`
    F64(f64),
}

impl Value {
    /// An integer of any width and signedness that is `>= 0`, as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// An integer of any width that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float (f32 widened exactly) or an integer (converted).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// A bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An array.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// An array of strings.
    pub fn as_str_array(&self) -> Option<Vec<&str>> {
        match self.as_array()? {
            Array::Str(v) => Some(v.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// An array of integers of any type, each `>= 0`, as `u64`.
    pub fn as_u64_array(&self) -> Option<Vec<u64>> {
        self.as_array()?.as_u64s()
    }

    /// The type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::F32(_) => "float32",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
            Value::Array(..) => "array",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F64(_) => "float64",
        }
    }
}

/// An array value's elements, by element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `uint16` elements.
    U16(Vec<u16>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `uint32` elements.
    U32(Vec<u32>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// `string` elements.
    Str(Vec<String>),
    /// Arrays (nested).
    Array(Vec<Array>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float64` elements.
    F64(Vec<f64>),
}

impl Array {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::Str(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::Str(_) => ValueType::Str,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// Integer elements of any type, each `>= 0`, as `u64`.
    pub fn as_u64s(&self) -> Option<Vec<u64>> {
        fn all<T: Copy>(v: &[T], f: impl Fn(T) -> Option<u64>) -> Option<Vec<u64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            Array::U8(v) => all(v, |x| Some(x.into())),
            Array::U16(v) => all(v, |x| Some(x.into())),
            Array::U32(v) => all(v, |x| Some(x.into())),
            Array::U64(v) => all(v, Some),
            Array::I8(v) => all(v, |x| u64::try_from(x).ok()),
            Array::I16(v) => all(v, |x| u64::try_from(x).ok()),
            Array::I32(v) => all(v, |x| u64::try_from(x).ok()),
            Array::I64(v) => all(v, |x| u64::try_from(x).ok()),
            _ => None,
        }
    }
}

/// One tensor's info: name, dimensions in GGUF order (`dims[0]` varies fastest), type and
/// where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, `ne[0]` first (the fastest-varying one; the reverse of PyTorch's shape).
    pub dims: Vec<u64>,
    /// Its ggml type.
    pub ty: GgmlType,
    /// The absolute byte offset of its data in the file.
    pub offset: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elems(&self) -> u64 {
        // Checked when the file was opened: the product fits and the bytes lie in the file.
        self.dims.iter().product()
    }

    /// The shape in row-major (PyTorch) order: `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An open GGUF file: metadata and tensor infos in memory, tensor data read on demand.
#[derive(Clone, Debug)]
pub struct Gguf {
    path: PathBuf,
    version: u32,
    file_bytes: u64,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    keys: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    names: HashMap<String, usize>,
}

/// A bounds-checked reader of the header: knows its position and the file's length.
struct Cursor<'a> {
    r: BufReader<File>,
    pos: u64,
    len: u64,
    path: &'a Path,
    /// The key or tensor being read, for errors.
    what: String,
}

impl Cursor<'_> {
    fn err(&self, at: u64, message: impl Into<String>) -> GgufError {
        GgufError {
            path: self.path.to_owned(),
            offset: Some(at),
            what: self.what.clone(),
            message: message.into(),
        }
    }

    fn left(&self) -> u64 {
        self.len - self.pos
    }

    /// Checks that `count` items of at least `min_bytes` each can still be in the file.
    fn check_count(&self, at: u64, count: u64, min_bytes: u64, of: &str) -> Result<(), GgufError> {
        match count.checked_mul(min_bytes) {
            Some(n) if n <= self.left() => Ok(()),
            _ => Err(self.err(
                at,
                format!(
                    "{of} count {count} cannot fit in the {} bytes left in the file",
                    self.left()
                ),
            )),
        }
    }

    fn bytes<const N: usize>(&mut self, of: &str) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.fill(&mut b, of)?;
        Ok(b)
    }

    fn fill(&mut self, b: &mut [u8], of: &str) -> Result<(), GgufError> {
        let at = self.pos;
        if (b.len() as u64) > self.left() {
            return Err(self.err(
                at,
                format!(
                    "the file ends (at byte {}) inside {of} ({} bytes)",
                    self.len,
                    b.len()
                ),
            ));
        }
        self.r
            .read_exact(b)
            .map_err(|e| self.err(at, format!("cannot read {of}: {e}")))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn u32(&mut self, of: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(of)?))
    }

    fn u64(&mut self, of: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(of)?))
    }

    fn string(&mut self, of: &str) -> Result<String, GgufError> {
        let at = self.pos;
        let n = self.u64(of)?;
        if n > self.left() {
            return Err(self.err(
                at,
                format!(
                    "{of} length {n} is more than the {} bytes left in the file",
                    self.left()
                ),
            ));
        }
        let mut b = vec![0u8; n as usize];
        self.fill(&mut b, of)?;
        String::from_utf8(b).map_err(|e| self.err(at + 8, format!("{of} is not UTF-8: {e}")))
    }

    fn value_type(&mut self, of: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32(of)?;
        ValueType::from_id(id)
            .ok_or_else(|| self.err(at, format!("unknown value type {id} (GGUF defines 0..=12)")))
    }

    fn value(&mut self, ty: ValueType, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.bytes("a uint8")?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.bytes("an int8")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.bytes("a uint16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.bytes("an int16")?)),
            ValueType::U32 => Value::U32(self.u32("a uint32")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.bytes("an int32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.bytes("a float32")?)),
            ValueType::U64 => Value::U64(self.u64("a uint64")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.bytes("an int64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.bytes("a float64")?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.bytes::<1>("a bool")? {
                    [0] => Value::Bool(false),
                    [1] => Value::Bool(true),
                    [b] => return Err(self.err(at, format!("bool byte is {b}, not 0 or 1"))),
                }
            }
            ValueType::Str => Value::Str(self.string("a string value")?),
            ValueType::Array => Value::Array(self.array(depth)?),
        })
    }
}

impl Cursor<'_> {
    /// `count` fixed-size elements of `N` bytes each, read at once (the count was checked
    /// against the bytes left, so the buffer is no larger than the rest of the file).
    fn fixed<const N: usize, T>(
        &mut self,
        count: u64,
        of: &str,
        conv: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        let mut raw = vec![0u8; count as usize * N];
        self.fill(&mut raw, of)?;
        Ok(raw
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                conv(a)
            })
            .collect())
    }

    /// An array value (after its type id): element type, count, elements.
    fn array(&mut self, depth: u32) -> Result<Array, GgufError> {
        let at = self.pos;
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.err(at, format!("arrays nest more than {MAX_ARRAY_DEPTH} deep")));
        }
        let elem = self.value_type("an array's element type")?;
        let count_at = self.pos;
        let count = self.u64("an array's count")?;
        self.check_count(count_at, count, elem.min_bytes(), "array element")?;
        let of = "an array's elements";
        Ok(match elem {
            ValueType::U8 => Array::U8(self.fixed(count, of, u8::from_le_bytes)?),
            ValueType::I8 => Array::I8(self.fixed(count, of, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.fixed(count, of, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.fixed(count, of, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.fixed(count, of, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.fixed(count, of, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.fixed(count, of, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.fixed(count, of, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.fixed(count, of, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.fixed(count, of, f64::from_le_bytes)?),
            ValueType::Bool => {
                let start = self.pos;
                let raw = self.fixed(count, of, |[b]: [u8; 1]| b)?;
                if let Some(i) = raw.iter().position(|&b| b > 1) {
                    return Err(self.err(
                        start + i as u64,
                        format!("bool byte is {}, not 0 or 1", raw[i]),
                    ));
                }
                Array::Bool(raw.into_iter().map(|b| b == 1).collect())
            }
            ValueType::Str => {
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.string("a string element")?);
                }
                Array::Str(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.array(depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

impl Gguf {
    /// Opens and parses `path`'s header, metadata and tensor infos (not the tensor data).
    pub fn open(path: impl AsRef<Path>) -> Result<Gguf, GgufError> {
        let path = path.as_ref();
        let whole = |message: String| GgufError {
            path: path.to_owned(),
            offset: None,
            what: String::new(),
            message,
        };
        let file = File::open(path).map_err(|e| whole(format!("cannot open: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| whole(format!("cannot read its size: {e}")))?
            .len();
        let mut c = Cursor {
            r: BufReader::with_capacity(1 << 16, file),
            pos: 0,
            len,
            path,
            what: "header".into(),
        };
        let magic: [u8; 4] = c.bytes("the magic")?;
        if &magic != MAGIC {
            return Err(c.err(
                0,
                format!(
                    "not a GGUF file: the magic is {:?}, expected \"GGUF\"",
                    String::from_utf8_lossy(&magic)
                ),
            ));
        }
        let version = c.u32("the version")?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(c.err(
                    4,
                    "GGUF version 1 is not supported (32-bit counts; convert the file with a \
                     current llama.cpp); versions 2 and 3 are",
                ));
            }
            v if v.swap_bytes() <= 3 => {
                return Err(c.err(
                    4,
                    format!(
                        "a big-endian GGUF file (version {}): only little-endian files are \
                         supported",
                        v.swap_bytes()
                    ),
                ));
            }
            v => {
                return Err(c.err(
                    4,
                    format!("unknown GGUF version {v}: versions 2 and 3 are supported"),
                ));
            }
        }
        let at = c.pos;
        let n_tensors = c.u64("the tensor count")?;
        let kv_at = c.pos;
        let n_kv = c.u64("the key/value count")?;
        // A key/value is at least a key length, a type and a one-byte value; a tensor info
        // a name length, a dimension count, a type and an offset.
        c.check_count(kv_at, n_kv, 8 + 4 + 1, "key/value")?;
        c.check_count(at, n_tensors, 8 + 4 + 4 + 8, "tensor")?;

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut keys = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            c.what = format!("key/value {i}");
            let key_at = c.pos;
            let key = c.string("a key")?;
            c.what = format!("key `{key}`");
            if keys.contains_key(&key) {
                return Err(c.err(key_at, "the key appears twice"));
            }
            let ty = c.value_type("the value type")?;
            let value = c.value(ty, 0)?;
            keys.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let alignment = match keys.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 30 => a,
                _ => {
                    return Err(GgufError {
                        what: "key `general.alignment`".into(),
                        ..whole(format!(
                            "general.alignment is {v:?}: it must be a power of two"
                        ))
                    });
                }
            },
        };

        let mut infos = Vec::with_capacity(n_tensors as usize);
        let mut names = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            c.what = format!("tensor info {i}");
            let name_at = c.pos;
            let name = c.string("a tensor name")?;
            c.what = format!("tensor `{name}`");
            if names.contains_key(&name) {
                return Err(c.err(name_at, "the tensor name appears twice"));
            }
            let nd_at = c.pos;
            let nd = c.u32("the number of dimensions")?;
            if nd > MAX_DIMS {
                return Err(c.err(
                    nd_at,
                    format!("{nd} dimensions: a tensor has at most {MAX_DIMS}"),
                ));
            }
            let mut dims = Vec::with_capacity(nd as usize);
            for _ in 0..nd {
                dims.push(c.u64("a dimension")?);
            }
            let ty_at = c.pos;
            let ty_id = c.u32("the tensor type")?;
            let ty = GgmlType::from_id(ty_id).ok_or_else(|| {
                c.err(
                    ty_at,
                    format!(
                        "unknown ggml tensor type {ty_id}; dequantisable types: {}",
                        dequant::supported_list()
                    ),
                )
            })?;
            let off_at = c.pos;
            let rel = c.u64("the tensor offset")?;
            names.insert(name.clone(), infos.len());
            infos.push((name, dims, ty, rel, nd_at, off_at));
        }
        c.what = "tensor data".into();
        let info_end = c.pos;
        let data_offset = info_end
            .checked_next_multiple_of(alignment)
            .filter(|&d| d <= len || n_tensors == 0)
            .ok_or_else(|| {
                c.err(
                    info_end,
                    format!("the data section (aligned to {alignment}) starts past the end"),
                )
            })?;

        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, ty, rel, nd_at, off_at) in infos {
            c.what = format!("tensor `{name}`");
            let elems = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&e| e <= i64::MAX as u64)
                .ok_or_else(|| c.err(nd_at, format!("dimensions {dims:?} overflow")))?;
            let row = dims.first().copied().unwrap_or(1);
            let bytes = ty
                .row_bytes(row)
                .ok_or_else(|| {
                    c.err(
                        nd_at,
                        format!(
                            "ne[0] = {row} is not a multiple of {}'s block of {} elements",
                            ty.name, ty.block_elems
                        ),
                    )
                })?
                .checked_mul(elems.checked_div(row).unwrap_or(0))
                .ok_or_else(|| c.err(nd_at, format!("the size of {dims:?} overflows")))?;
            if !rel.is_multiple_of(alignment) {
                return Err(c.err(
                    off_at,
                    format!("data offset {rel} is not a multiple of the alignment {alignment}"),
                ));
            }
            let offset = data_offset.checked_add(rel);
            match offset.and_then(|o| o.checked_add(bytes)) {
                Some(end) if end <= len => {}
                _ => {
                    return Err(c.err(
                        off_at,
                        format!(
                            "its data (offset {rel} from the data section at {data_offset}, \
                             {bytes} bytes) runs past the end of the file ({len} bytes)"
                        ),
                    ));
                }
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset: data_offset + rel,
                bytes,
            });
        }

        Ok(Gguf {
            path: path.to_owned(),
            version,
            file_bytes: len,
            alignment,
            data_offset,
            metadata,
            keys,
            tensors,
            names,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The file's size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The alignment (`general.alignment`, or 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Every key/value, in file order.
    pub fn metadata_all(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.keys.get(key).map(|&i| &self.metadata[i].1)
    }

    /// `key` as a non-negative integer (any integer type).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.metadata(key)?.as_u64()
    }

    /// `key` as a signed integer.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.metadata(key)?.as_i64()
    }

    /// `key` as a float (f32, f64 or an integer).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.metadata(key)?.as_f64()
    }

    /// `key` as a bool.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.metadata(key)?.as_bool()
    }

    /// `key` as a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata(key)?.as_str()
    }

    /// `key` as an array of strings.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        self.metadata(key)?.as_str_array()
    }

    /// An error about `key` (no offset: the header has been read).
    fn key_error(&self, key: &str, message: String) -> GgufError {
        GgufError {
            path: self.path.clone(),
            offset: None,
            what: format!("key `{key}`"),
            message,
        }
    }

    /// `key`'s value through `get`, or an error saying it is missing or of the wrong type.
    fn require<'a, T>(
        &'a self,
        key: &str,
        want: &str,
        get: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<T, GgufError> {
        let v = self
            .metadata(key)
            .ok_or_else(|| self.key_error(key, format!("the metadata has no `{key}`")))?;
        get(v).ok_or_else(|| {
            self.key_error(
                key,
                format!("`{key}` is a {} ({v:?}), expected {want}", v.type_name()),
            )
        })
    }

    /// `key` as a non-negative integer, or an error naming it.
    pub fn require_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.require(key, "a non-negative integer", Value::as_u64)
    }

    /// `key` as a float, or an error naming it.
    pub fn require_f64(&self, key: &str) -> Result<f64, GgufError> {
        self.require(key, "a number", Value::as_f64)
    }

    /// `key` as a string, or an error naming it.
    pub fn require_str(&self, key: &str) -> Result<&str, GgufError> {
        self.require(key, "a string", Value::as_str)
    }

    /// `key` as an array of strings, or an error naming it.
    pub fn require_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.require(key, "an array of strings", Value::as_str_array)
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.names.get(name).map(|&i| &self.tensors[i])
    }

    fn tensor_error(&self, name: &str, offset: Option<u64>, message: String) -> GgufError {
        GgufError {
            path: self.path.clone(),
            offset,
            what: format!("tensor `{name}`"),
            message,
        }
    }

    fn info(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor(name).ok_or_else(|| {
            self.tensor_error(name, None, format!("the file has no tensor `{name}`"))
        })
    }

    /// The raw bytes of tensor `name` (one seek and one read; the size was checked against
    /// the file when it was opened).
    pub fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>, GgufError> {
        let t = self.info(name)?;
        let fail = |m: String| self.tensor_error(name, Some(t.offset), m);
        let mut f = File::open(&self.path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let len = f
            .metadata()
            .map_err(|e| fail(format!("cannot read its size: {e}")))?
            .len();
        if t.offset.saturating_add(t.bytes) > len {
            return Err(fail(format!(
                "the file is now {len} bytes: it shrank since it was opened"
            )));
        }
        f.seek(SeekFrom::Start(t.offset))
            .map_err(|e| fail(format!("cannot seek: {e}")))?;
        let mut b = vec![0u8; t.bytes as usize];
        f.read_exact(&mut b)
            .map_err(|e| fail(format!("cannot read {} bytes: {e}", t.bytes)))?;
        Ok(b)
    }

    /// Tensor `name` dequantised to f32: its shape in row-major (PyTorch) order (`dims`
    /// reversed, e.g. `[rows, cols]` for a matrix of `rows` output features) and its values in
    /// that order. An unsupported type is an error naming it and the supported ones.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let t = self.info(name)?;
        if !t.ty.is_supported() {
            return Err(self.tensor_error(
                name,
                Some(t.offset),
                format!(
                    "tensor type {} cannot be dequantised; supported: {}",
                    t.ty.name,
                    dequant::supported_list()
                ),
            ));
        }
        let bytes = self.tensor_bytes(name)?;
        let values = dequant::dequantize(t.ty, &bytes).map_err(|ty| {
            self.tensor_error(name, Some(t.offset), format!("type {ty} is not supported"))
        })?;
        Ok((t.shape(), values))
    }

    /// The hyperparameters of a Llama-family model (see [`LlamaHyper`]).
    pub fn llama_hyper(&self) -> Result<LlamaHyper, GgufError> {
        LlamaHyper::from_gguf(self)
    }
}

/// The shape of a Llama-family decoder (`llama`, `mistral`, `qwen2`, ...) read from a GGUF's
/// `{arch}.*` metadata, where `arch` is `general.architecture`.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaHyper {
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// `{arch}.block_count`: decoder layers.
    pub layers: u64,
    /// `{arch}.embedding_length`: hidden size `d`.
    pub hidden: u64,
    /// `{arch}.feed_forward_length`: FFN size `f`.
    pub ffn: u64,
    /// `{arch}.attention.head_count`: query heads `h`.
    pub heads: u64,
    /// `{arch}.attention.head_count_kv` (absent: `heads`): key/value heads.
    pub kv_heads: u64,
    /// `hidden / heads`.
    pub head_dim: u64,
    /// `{arch}.rope.freq_base` (absent: 10000, llama.cpp's default).
    pub rope_freq_base: f64,
    /// `{arch}.rope.dimension_count` (absent: `head_dim`): the leading dimensions of each
    /// head that are rotated.
    pub rope_dims: u64,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f64,
    /// `{arch}.vocab_size`, else the length of `tokenizer.ggml.tokens`, else `token_embd`'s
    /// second dimension.
    pub vocab: u64,
    /// `{arch}.context_length`: the longest context trained for.
    pub context_length: u64,
    /// Whether the file has an `output.weight` (an untied lm_head); else the lm_head is
    /// `token_embd.weight`.
    pub untied_lm_head: bool,
    /// Whether the attention projections have biases (`blk.0.attn_q.bias`, as Qwen2 has).
    pub attn_bias: bool,
}

impl LlamaHyper {
    /// Reads the hyperparameters; a missing or malformed key is an error naming it.
    pub fn from_gguf(g: &Gguf) -> Result<LlamaHyper, GgufError> {
        let arch = g.require_str("general.architecture")?.to_owned();
        let key = |k: &str| format!("{arch}.{k}");
        let positive = |k: &str| -> Result<u64, GgufError> {
            let k = key(k);
            match g.require_u64(&k)? {
                0 => Err(g.key_error(&k, format!("`{k}` is 0"))),
                v => Ok(v),
            }
        };
        let layers = positive("block_count")?;
        let hidden = positive("embedding_length")?;
        let ffn = positive("feed_forward_length")?;
        let heads = positive("attention.head_count")?;
        let kv_heads = if g.metadata(&key("attention.head_count_kv")).is_some() {
            positive("attention.head_count_kv")?
        } else {
            heads
        };
        if !hidden.is_multiple_of(heads) {
            let k = key("attention.head_count");
            return Err(g.key_error(
                &k,
                format!("{heads} heads do not divide the embedding length {hidden}"),
            ));
        }
        if !heads.is_multiple_of(kv_heads) {
            let k = key("attention.head_count_kv");
            return Err(g.key_error(
                &k,
                format!("{kv_heads} key/value heads do not divide the {heads} query heads"),
            ));
        }
        let rope_freq_base = match g.metadata(&key("rope.freq_base")) {
            None => 10_000.0,
            Some(_) => g.require_f64(&key("rope.freq_base"))?,
        };
        let rms_eps = g.require_f64(&key("attention.layer_norm_rms_epsilon"))?;
        let head_dim = hidden / heads;
        let rope_dims = if g.metadata(&key("rope.dimension_count")).is_some() {
            positive("rope.dimension_count")?
        } else {
            head_dim
        };
        if rope_dims > head_dim || !rope_dims.is_multiple_of(2) {
            let k = key("rope.dimension_count");
            return Err(g.key_error(
                &k,
                format!("{rope_dims} rotary dimensions: must be even and at most the head dimension {head_dim}"),
            ));
        }
        let vocab = if g.metadata(&key("vocab_size")).is_some() {
            positive("vocab_size")?
        } else if let Some(v) = g.metadata("tokenizer.ggml.tokens") {
            v.as_array().map(|a| a.len() as u64).ok_or_else(|| {
                g.key_error(
                    "tokenizer.ggml.tokens",
                    "`tokenizer.ggml.tokens` is not an array".into(),
                )
            })?
        } else if let Some(t) = g.tensor("token_embd.weight").filter(|t| t.dims.len() == 2) {
            t.dims[1]
        } else {
            let k = key("vocab_size");
            return Err(g.key_error(
                &k,
                format!(
                    "the vocabulary size is unknown: no `{k}`, no `tokenizer.ggml.tokens` and \
                     no 2-D `token_embd.weight`"
                ),
            ));
        };
        Ok(LlamaHyper {
            layers,
            hidden,
            ffn,
            heads,
            kv_heads,
            head_dim,
            rope_freq_base,
            rope_dims,
            rms_eps,
            vocab,
            context_length: positive("context_length")?,
            untied_lm_head: g.tensor("output.weight").is_some(),
            attn_bias: g.tensor("blk.0.attn_q.bias").is_some(),
            architecture: arch,
        })
    }
}
