//! Column codecs for segment blocks. Every block holds one column of one series.
//!
//! Block layout:
//!
//! ```text
//! time block:  +-----------+---------+
//!              | codec u8  | payload |
//!              +-----------+---------+
//! field block: +-----------+------------------------------+-----------+---------------------------+
//!              | nulls u8  | validity bitmap (if nulls=1) | codec u8  | payload (present values)  |
//!              +-----------+------------------------------+-----------+---------------------------+
//! ```
//!
//! Codecs (the encoder tries the candidates for the column type and keeps the smallest):
//!
//! | code | name      | payload                                                            | types        |
//! |------|-----------|--------------------------------------------------------------------|--------------|
//! | 0    | raw       | little-endian values; strings as uvarint length + bytes           | all          |
//! | 1    | pco       | a `pco` standalone chunk (delta order and mode chosen by pco)      | i64 u64 f64  |
//! | 2    | gorilla   | Gorilla XOR bit stream (Facebook's Gorilla paper, section 4.1.2)   | f64          |
//! | 3    | decimal   | digits d: u8, then a pco chunk of the i64 values `v * 10^d`        | f64          |
//! | 4    | lz4       | lz4 (size-prepended) of the raw payload                            | string       |
//! | 5    | dict      | n: uvarint, n distinct strings (raw), then the ids as a numeric    | string       |
//! |      |           | block (codec byte + payload)                                       |              |
//! | 6    | const     | one value (raw), repeated for every present row                    | all          |
//! | 7    | bits      | packed bits, LSB first                                             | bool         |
//! | 8    | run       | first i64, step i64: `first + i * step` (regular timestamps)       | time         |
//! | 9    | delta     | zigzag uvarints: the first value, then each delta-of-delta         | i64 u64 time |
//!
//! Blocks of fewer than [`SMALL_BLOCK`] values skip pco (and decimal, which is pco): its
//! chunk set-up costs more than it saves on a handful of values, and a flush of many
//! series with a few points each would spend most of its time there.

use std::collections::HashMap;

use super::rows::{Column, Dense, DenseValues};
use super::schema::FieldType;

/// A block could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt column block: {0}")]
pub struct CodecError(pub &'static str);

type Result<T> = std::result::Result<T, CodecError>;

/// Codec identifiers (see the module table).
pub mod id {
    pub const RAW: u8 = 0;
    pub const PCO: u8 = 1;
    pub const GORILLA: u8 = 2;
    pub const DECIMAL: u8 = 3;
    pub const LZ4: u8 = 4;
    pub const DICT: u8 = 5;
    pub const CONST: u8 = 6;
    pub const BITS: u8 = 7;
    pub const RUN: u8 = 8;
    pub const DELTA: u8 = 9;
}

/// Blocks with fewer values than this are not tried with pco (see the module docs).
pub const SMALL_BLOCK: usize = 64;

/// Largest element count a block may claim (guards allocations on corrupt input).
const MAX_ROWS: usize = 1 << 28;

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos).ok_or(CodecError("truncated varint"))?;
        *pos += 1;
        if shift >= 64 {
            return Err(CodecError("varint too long"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
    }
}

// ---------------------------------------------------------------------------------------
// Numbers: pco, raw, const.

trait Num: pco::data_types::Number + Copy + PartialEq {
    const SIZE: usize;
    /// Integers take the delta codec (as their two's-complement i64).
    const INTEGRAL: bool;
    fn to_le(self, out: &mut Vec<u8>);
    fn from_le(b: &[u8]) -> Self;
    fn to_i64(self) -> i64;
    fn from_i64(v: i64) -> Self;
}

macro_rules! num {
    ($t:ty, $n:expr, $integral:expr, $to:expr, $from:expr) => {
        impl Num for $t {
            const SIZE: usize = $n;
            const INTEGRAL: bool = $integral;
            fn to_i64(self) -> i64 {
                $to(self)
            }
            fn from_i64(v: i64) -> Self {
                $from(v)
            }
            fn to_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("sized"))
            }
        }
    };
}
num!(i64, 8, true, |v| v, |v| v);
num!(u64, 8, true, |v: u64| v as i64, |v: i64| v as u64);
num!(f64, 8, false, |v: f64| v.to_bits() as i64, |v: i64| {
    f64::from_bits(v as u64)
});

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Delta-of-delta zigzag varints (wrapping, so any i64 sequence round-trips).
fn delta_encode<T: Num>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2 + 8);
    let (mut prev, mut prev_delta) = (0i64, 0i64);
    for v in values {
        let v = v.to_i64();
        let delta = v.wrapping_sub(prev);
        put_uvarint(&mut out, zigzag(delta.wrapping_sub(prev_delta)));
        (prev, prev_delta) = (v, delta);
    }
    out
}

fn delta_decode<T: Num>(payload: &[u8], n: usize) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(n.min(payload.len()));
    let (mut pos, mut prev, mut prev_delta) = (0usize, 0i64, 0i64);
    for _ in 0..n {
        let delta = prev_delta.wrapping_add(unzigzag(get_uvarint(payload, &mut pos)?));
        prev = prev.wrapping_add(delta);
        prev_delta = delta;
        out.push(T::from_i64(prev));
    }
    if pos != payload.len() {
        return Err(CodecError("delta length"));
    }
    Ok(out)
}

fn pco_encode<T: Num>(values: &[T]) -> Option<Vec<u8>> {
    if values.is_empty() {
        return None;
    }
    pco::standalone::simple_compress(values, &pco::ChunkConfig::default()).ok()
}

fn pco_decode<T: Num>(payload: &[u8], n: usize) -> Result<Vec<T>> {
    let v: Vec<T> = pco::standalone::simple_decompress(payload).map_err(|_| CodecError("pco"))?;
    if v.len() != n {
        return Err(CodecError("pco value count"));
    }
    Ok(v)
}

fn raw_encode<T: Num>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    for v in values {
        v.to_le(&mut out);
    }
    out
}

fn raw_decode<T: Num>(payload: &[u8], n: usize) -> Result<Vec<T>> {
    if payload.len() != n * T::SIZE {
        return Err(CodecError("raw length"));
    }
    Ok(payload.chunks_exact(T::SIZE).map(T::from_le).collect())
}

/// Appends the smallest encoding of `values` (codec byte + payload) to `out`.
fn encode_numbers<T: Num>(values: &[T], out: &mut Vec<u8>, extra: &[(u8, Vec<u8>)]) {
    if !values.is_empty() && values.iter().all(|v| *v == values[0]) {
        out.push(id::CONST);
        values[0].to_le(out);
        return;
    }
    let mut best = (id::RAW, raw_encode(values));
    if values.len() < SMALL_BLOCK {
        if T::INTEGRAL {
            let d = delta_encode(values);
            if d.len() < best.1.len() {
                best = (id::DELTA, d);
            }
        }
    } else if let Some(p) = pco_encode(values)
        && p.len() < best.1.len()
    {
        best = (id::PCO, p);
    }
    for (code, payload) in extra {
        if payload.len() < best.1.len() {
            best = (*code, payload.clone());
        }
    }
    out.push(best.0);
    out.extend_from_slice(&best.1);
}

fn decode_numbers<T: Num>(code: u8, payload: &[u8], n: usize) -> Result<Vec<T>> {
    match code {
        id::RAW => raw_decode(payload, n),
        id::PCO => pco_decode(payload, n),
        id::CONST if payload.len() == T::SIZE => Ok(vec![T::from_le(payload); n]),
        id::DELTA if T::INTEGRAL => delta_decode(payload, n),
        _ => Err(CodecError("unknown numeric codec")),
    }
}

// ---------------------------------------------------------------------------------------
// Floats: Gorilla XOR and decimal scaling.

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            out: Vec::new(),
            acc: 0,
            bits: 0,
        }
    }
    /// Writes the low `n` bits of `v`, most significant first.
    fn write(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.acc = (self.acc << 1) | ((v >> i) & 1);
            self.bits += 1;
            if self.bits == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.bits = 0;
            }
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Result<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self
                .buf
                .get(self.pos / 8)
                .ok_or(CodecError("truncated bits"))?;
            v = (v << 1) | u64::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

/// Gorilla XOR encoding of floats.
pub fn gorilla_encode(values: &[f64]) -> Vec<u8> {
    let mut w = BitWriter::new();
    let Some(first) = values.first() else {
        return w.finish();
    };
    let mut prev = first.to_bits();
    w.write(prev, 64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for v in &values[1..] {
        let cur = v.to_bits();
        let xor = cur ^ prev;
        if xor == 0 {
            w.write(0, 1);
        } else {
            w.write(1, 1);
            let l = xor.leading_zeros().min(31);
            let t = xor.trailing_zeros();
            if lead != u32::MAX && l >= lead && t >= trail {
                w.write(0, 1);
                w.write(xor >> trail, 64 - lead - trail);
            } else {
                let len = 64 - l - t;
                w.write(1, 1);
                w.write(u64::from(l), 5);
                w.write(u64::from(len - 1), 6);
                w.write(xor >> t, len);
                lead = l;
                trail = t;
            }
        }
        prev = cur;
    }
    w.finish()
}

pub fn gorilla_decode(payload: &[u8], n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n.min(MAX_ROWS));
    if n == 0 {
        return Ok(out);
    }
    let mut r = BitReader {
        buf: payload,
        pos: 0,
    };
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let (mut lead, mut trail) = (0u32, 0u32);
    for _ in 1..n {
        if r.read(1)? == 1 {
            if r.read(1)? == 1 {
                lead = r.read(5)? as u32;
                let len = r.read(6)? as u32 + 1;
                if lead + len > 64 {
                    return Err(CodecError("gorilla window"));
                }
                trail = 64 - lead - len;
            }
            let len = 64 - lead - trail;
            prev ^= r.read(len)? << trail;
        }
        out.push(f64::from_bits(prev));
    }
    Ok(out)
}

/// Decimal scaling: when every value has at most `d` decimal digits, stores the integers
/// `v * 10^d` with pco. `None` when no `d <= 9` represents every value exactly.
pub fn decimal_encode(values: &[f64]) -> Option<Vec<u8>> {
    if values.is_empty() {
        return None;
    }
    'digits: for d in 0..=9u8 {
        let scale = 10f64.powi(i32::from(d));
        let mut ints = Vec::with_capacity(values.len());
        for v in values {
            let s = (v * scale).round();
            if !s.is_finite()
                || s.abs() >= 9.0e15
                || s / scale != *v
                || (*v == 0.0 && v.is_sign_negative())
            {
                continue 'digits;
            }
            ints.push(s as i64);
        }
        let mut out = vec![d];
        out.extend_from_slice(&pco_encode(&ints)?);
        return Some(out);
    }
    None
}

pub fn decimal_decode(payload: &[u8], n: usize) -> Result<Vec<f64>> {
    let (&d, rest) = payload.split_first().ok_or(CodecError("decimal header"))?;
    if d > 9 {
        return Err(CodecError("decimal digits"));
    }
    let scale = 10f64.powi(i32::from(d));
    Ok(pco_decode::<i64>(rest, n)?
        .into_iter()
        .map(|i| i as f64 / scale)
        .collect())
}

/// Encodes floats with one codec, for comparisons (`None` if it does not apply).
pub fn encode_floats_with(code: u8, values: &[f64]) -> Option<Vec<u8>> {
    match code {
        id::RAW => Some(raw_encode(values)),
        id::PCO => pco_encode(values),
        id::GORILLA => Some(gorilla_encode(values)),
        id::DECIMAL => decimal_encode(values),
        _ => None,
    }
}

pub fn decode_floats_with(code: u8, payload: &[u8], n: usize) -> Result<Vec<f64>> {
    match code {
        id::GORILLA => gorilla_decode(payload, n),
        id::DECIMAL => decimal_decode(payload, n),
        _ => decode_numbers(code, payload, n),
    }
}

// ---------------------------------------------------------------------------------------
// Timestamps.

/// Encodes a series' timestamps (ascending): pco finds the delta order (regular intervals
/// cost almost nothing).
pub fn encode_time(times: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    if times.len() >= 2 {
        let step = times[1].wrapping_sub(times[0]);
        if times.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step) {
            out.push(id::RUN);
            out.extend_from_slice(&times[0].to_le_bytes());
            out.extend_from_slice(&step.to_le_bytes());
            return out;
        }
    }
    encode_numbers(times, &mut out, &[]);
    out
}

pub fn decode_time(block: &[u8], rows: usize) -> Result<Vec<i64>> {
    if rows > MAX_ROWS {
        return Err(CodecError("row count"));
    }
    let (&code, payload) = block.split_first().ok_or(CodecError("empty block"))?;
    if code == id::RUN {
        if payload.len() != 16 {
            return Err(CodecError("run block"));
        }
        let first = i64::from_le_bytes(payload[..8].try_into().expect("8"));
        let step = i64::from_le_bytes(payload[8..].try_into().expect("8"));
        return Ok((0..rows as i64)
            .map(|i| first.wrapping_add(i.wrapping_mul(step)))
            .collect());
    }
    decode_numbers(code, payload, rows)
}

// ---------------------------------------------------------------------------------------
// Field columns.

/// Statistics of one field block.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnStats {
    pub nulls: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max: Option<f64>,
    /// A float block holds NaN, which `min`/`max` leave out (recorded since
    /// [`super::segment::STATS_VERSION`] 1; unknown in older files).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub nan: bool,
    /// The value of the block's last row, as the bits of its type (`f64::to_bits`, an
    /// integer's two's complement, 0/1); `None` when that row is null or the column holds
    /// strings. Recorded since [`super::segment::STATS_VERSION`] 1.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last: Option<u64>,
}

fn put_validity<T>(out: &mut Vec<u8>, values: &[Option<T>]) -> u32 {
    let nulls = values.iter().filter(|v| v.is_none()).count();
    if nulls == 0 {
        out.push(0);
        return 0;
    }
    out.push(1);
    let mut bits = vec![0u8; values.len().div_ceil(8)];
    for (i, v) in values.iter().enumerate() {
        if v.is_some() {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bits);
    nulls as u32
}

/// `n` bits packed LSB first.
fn unpack_bits(bits: &[u8], n: usize) -> Vec<bool> {
    (0..n).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect()
}

/// The validity bitmap of a field block; `None` when no row is null.
fn get_validity(raw: &[u8], pos: &mut usize, rows: usize) -> Result<Option<Vec<bool>>> {
    let flag = *raw.get(*pos).ok_or(CodecError("truncated validity"))?;
    *pos += 1;
    match flag {
        0 => Ok(None),
        1 => {
            let n = rows.div_ceil(8);
            let bits = raw
                .get(*pos..*pos + n)
                .ok_or(CodecError("truncated validity"))?;
            *pos += n;
            Ok(Some(unpack_bits(bits, rows)))
        }
        _ => Err(CodecError("bad validity flag")),
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    values.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), v| {
        (
            Some(lo.map_or(v, |l| l.min(v))),
            Some(hi.map_or(v, |h| h.max(v))),
        )
    })
}

fn raw_strings(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in values {
        put_uvarint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn read_strings(raw: &[u8], pos: &mut usize, n: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n.min(MAX_ROWS));
    for _ in 0..n {
        let len = get_uvarint(raw, pos)? as usize;
        let end = pos.checked_add(len).ok_or(CodecError("bad length"))?;
        let b = raw.get(*pos..end).ok_or(CodecError("truncated string"))?;
        *pos = end;
        out.push(String::from_utf8(b.to_vec()).map_err(|_| CodecError("invalid UTF-8"))?);
    }
    Ok(out)
}

fn encode_strings(values: &[&str], out: &mut Vec<u8>) {
    let raw = raw_strings(values);
    let mut best = (id::RAW, raw.clone());
    let lz = lz4_flex::compress_prepend_size(&raw);
    if lz.len() < best.1.len() {
        best = (id::LZ4, lz);
    }
    let mut dict: HashMap<&str, u64> = HashMap::new();
    let mut words = Vec::new();
    let ids: Vec<u64> = values
        .iter()
        .map(|s| {
            *dict.entry(s).or_insert_with(|| {
                words.push(*s);
                words.len() as u64 - 1
            })
        })
        .collect();
    if words.len() * 2 <= values.len() {
        let mut d = Vec::new();
        put_uvarint(&mut d, words.len() as u64);
        d.extend_from_slice(&raw_strings(&words));
        let mut ids_block = Vec::new();
        encode_numbers(&ids, &mut ids_block, &[]);
        d.extend_from_slice(&ids_block);
        if d.len() < best.1.len() {
            best = (id::DICT, d);
        }
    }
    out.push(best.0);
    out.extend_from_slice(&best.1);
}

fn decode_strings(code: u8, payload: &[u8], n: usize) -> Result<Vec<String>> {
    match code {
        id::RAW => read_strings(payload, &mut 0, n),
        id::LZ4 => {
            if payload.len() >= 4 {
                let size = u32::from_le_bytes(payload[0..4].try_into().expect("4")) as usize;
                if size > payload.len().saturating_mul(255) + 64 {
                    return Err(CodecError("implausible lz4 size"));
                }
            }
            let raw =
                lz4_flex::decompress_size_prepended(payload).map_err(|_| CodecError("lz4"))?;
            read_strings(&raw, &mut 0, n)
        }
        id::DICT => {
            let mut pos = 0;
            let nwords = get_uvarint(payload, &mut pos)? as usize;
            let words = read_strings(payload, &mut pos, nwords.min(n))?;
            let (&c, rest) = payload[pos..].split_first().ok_or(CodecError("dict ids"))?;
            let ids: Vec<u64> = decode_numbers(c, rest, n)?;
            ids.iter()
                .map(|i| words.get(*i as usize).cloned().ok_or(CodecError("dict id")))
                .collect()
        }
        _ => Err(CodecError("unknown string codec")),
    }
}

/// Encodes one field column (one series), returning the block and its statistics.
pub fn encode_column(col: &Column) -> (Vec<u8>, ColumnStats) {
    let mut out = Vec::with_capacity(col.len() * 2 + 8);
    let mut stats = ColumnStats::default();
    match col {
        Column::Float(v) => {
            stats.nulls = put_validity(&mut out, v);
            let present: Vec<f64> = v.iter().flatten().copied().collect();
            (stats.min, stats.max) = min_max(present.iter().copied());
            stats.nan = present.iter().any(|v| v.is_nan());
            stats.last = v.last().copied().flatten().map(f64::to_bits);
            let mut extra = vec![(id::GORILLA, gorilla_encode(&present))];
            if present.len() >= SMALL_BLOCK
                && let Some(d) = decimal_encode(&present)
            {
                extra.push((id::DECIMAL, d));
            }
            encode_numbers(&present, &mut out, &extra);
        }
        Column::Integer(v) => {
            stats.nulls = put_validity(&mut out, v);
            let present: Vec<i64> = v.iter().flatten().copied().collect();
            (stats.min, stats.max) = min_max(present.iter().map(|x| *x as f64));
            stats.last = v.last().copied().flatten().map(|x| x as u64);
            encode_numbers(&present, &mut out, &[]);
        }
        Column::UInteger(v) => {
            stats.nulls = put_validity(&mut out, v);
            let present: Vec<u64> = v.iter().flatten().copied().collect();
            (stats.min, stats.max) = min_max(present.iter().map(|x| *x as f64));
            stats.last = v.last().copied().flatten();
            encode_numbers(&present, &mut out, &[]);
        }
        Column::String(v) => {
            stats.nulls = put_validity(&mut out, v);
            let present: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
            encode_strings(&present, &mut out);
        }
        Column::Boolean(v) => {
            stats.nulls = put_validity(&mut out, v);
            let present: Vec<bool> = v.iter().flatten().copied().collect();
            (stats.min, stats.max) = min_max(present.iter().map(|b| f64::from(u8::from(*b))));
            stats.last = v.last().copied().flatten().map(u64::from);
            out.push(id::BITS);
            let mut bits = vec![0u8; present.len().div_ceil(8)];
            for (i, b) in present.iter().enumerate() {
                if *b {
                    bits[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bits);
        }
    }
    (out, stats)
}

fn spread<T: Clone>(valid: &[bool], present: Vec<T>) -> Result<Vec<Option<T>>> {
    let mut it = present.into_iter();
    let out: Vec<Option<T>> = valid
        .iter()
        .map(|ok| if *ok { it.next() } else { None })
        .collect();
    if it.next().is_some() || out.iter().zip(valid).any(|(v, ok)| *ok && v.is_none()) {
        return Err(CodecError("value count does not match validity"));
    }
    Ok(out)
}

/// Decodes a field block of `rows` rows.
pub fn decode_column(block: &[u8], ty: FieldType, rows: usize) -> Result<Column> {
    if rows > MAX_ROWS {
        return Err(CodecError("row count"));
    }
    let mut pos = 0;
    let valid = get_validity(block, &mut pos, rows)?.unwrap_or_else(|| vec![true; rows]);
    let n = valid.iter().filter(|v| **v).count();
    let (&code, payload) = block[pos..]
        .split_first()
        .ok_or(CodecError("missing codec"))?;
    Ok(match ty {
        FieldType::Float => Column::Float(spread(&valid, decode_floats_with(code, payload, n)?)?),
        FieldType::Integer => Column::Integer(spread(&valid, decode_numbers(code, payload, n)?)?),
        FieldType::UInteger => Column::UInteger(spread(&valid, decode_numbers(code, payload, n)?)?),
        FieldType::String => Column::String(spread(&valid, decode_strings(code, payload, n)?)?),
        FieldType::Boolean => {
            if code != id::BITS || payload.len() < n.div_ceil(8) {
                return Err(CodecError("bool block"));
            }
            Column::Boolean(spread(&valid, unpack_bits(payload, n))?)
        }
    })
}

/// Decodes a field block of `rows` rows straight into [`Dense`] form: without nulls, the
/// decoded values are the column as they are.
pub fn decode_dense(block: &[u8], ty: FieldType, rows: usize) -> Result<Dense> {
    if rows > MAX_ROWS {
        return Err(CodecError("row count"));
    }
    let mut pos = 0;
    let valid = get_validity(block, &mut pos, rows)?;
    let n = valid
        .as_ref()
        .map_or(rows, |v| v.iter().filter(|x| **x).count());
    let (&code, payload) = block[pos..]
        .split_first()
        .ok_or(CodecError("missing codec"))?;
    let values = match ty {
        FieldType::Float => DenseValues::Float(decode_floats_with(code, payload, n)?),
        FieldType::Integer => DenseValues::Integer(decode_numbers(code, payload, n)?),
        FieldType::UInteger => DenseValues::UInteger(decode_numbers(code, payload, n)?),
        FieldType::String => DenseValues::String(decode_strings(code, payload, n)?),
        FieldType::Boolean => {
            if code != id::BITS || payload.len() < n.div_ceil(8) {
                return Err(CodecError("bool block"));
            }
            DenseValues::Boolean(unpack_bits(payload, n))
        }
    };
    if values.len() != n {
        return Err(CodecError("value count does not match validity"));
    }
    Ok(Dense::from_present(values, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = vec![-5, 0, 10, 20, 30, 1_000_000_000_000];
        assert_eq!(decode_time(&encode_time(&t), t.len()).unwrap(), t);
        let regular: Vec<i64> = (0..1000)
            .map(|i| 1_451_606_400_000_000_000 + i * 10_000_000_000)
            .collect();
        let block = encode_time(&regular);
        assert!(
            block.len() < 64,
            "regular timestamps are nearly free: {}",
            block.len()
        );
        assert_eq!(decode_time(&block, regular.len()).unwrap(), regular);
        let cols = [
            Column::Float(vec![
                Some(1.5),
                None,
                Some(-0.0),
                Some(f64::MAX),
                Some(f64::MIN_POSITIVE),
            ]),
            Column::Float(vec![Some(0.1), Some(0.25), Some(12.5), None]),
            Column::Float(vec![Some(3.0); 5]),
            Column::Integer(vec![Some(i64::MIN), Some(i64::MAX), None, Some(0)]),
            Column::Integer((0..500).map(|i| Some(i * 3)).collect()),
            Column::UInteger(vec![Some(u64::MAX), Some(0), None, Some(7)]),
            Column::String(vec![
                Some("a".into()),
                None,
                Some("".into()),
                Some("ünï".into()),
            ]),
            Column::String((0..100).map(|i| Some(format!("v{}", i % 3))).collect()),
            Column::Boolean(vec![Some(true), None, Some(false), Some(true)]),
            Column::Float(vec![None, None]),
        ];
        for c in cols {
            let (block, stats) = encode_column(&c);
            let back = decode_column(&block, c.field_type(), c.len()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{c:?}"));
            if let Column::Float(v) = &c {
                assert_eq!(
                    stats.nulls as usize,
                    v.iter().filter(|x| x.is_none()).count()
                );
            }
        }
    }

    #[test]
    fn float_codecs_round_trip_exactly() {
        let mut walk = 50.0f64;
        let values: Vec<f64> = (0..2000)
            .map(|i| {
                walk += ((i * 7919) % 13) as f64 / 13.0 - 0.5;
                walk
            })
            .collect();
        for code in [id::RAW, id::PCO, id::GORILLA] {
            let enc = encode_floats_with(code, &values).unwrap();
            let dec = decode_floats_with(code, &enc, values.len()).unwrap();
            assert!(
                dec.iter()
                    .zip(&values)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "codec {code}"
            );
        }
        let decimals: Vec<f64> = (0..100).map(|i| i as f64 * 0.25 - 3.5).collect();
        let enc = decimal_encode(&decimals).unwrap();
        assert_eq!(decimal_decode(&enc, decimals.len()).unwrap(), decimals);
        if let Some(e) = decimal_encode(&[0.1 + 0.2]) {
            assert_eq!(decimal_decode(&e, 1).unwrap()[0], 0.1 + 0.2);
        }
        assert!(
            decimal_encode(&[-0.0]).is_none(),
            "negative zero must not become zero"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for ty in [
            FieldType::Float,
            FieldType::Integer,
            FieldType::String,
            FieldType::Boolean,
        ] {
            for junk in [
                &[1u8, 2, 3, 4, 5, 6][..],
                &[],
                &[0, 1],
                &[0, 2, 0, 0, 0, 0],
                &[0, 5, 200, 1],
            ] {
                let _ = decode_column(junk, ty, 10);
            }
            assert!(decode_column(&[], ty, 10).is_err());
        }
        assert!(decode_time(&[1, 2, 3], 5).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64), rows in 0usize..50) {
            for ty in [FieldType::Float, FieldType::Integer, FieldType::UInteger, FieldType::String, FieldType::Boolean] {
                let _ = decode_column(&bytes, ty, rows);
            }
            let _ = decode_time(&bytes, rows);
        }

        #[test]
        fn gorilla_round_trips(values in proptest::collection::vec(proptest::num::f64::ANY, 0..100)) {
            let dec = gorilla_decode(&gorilla_encode(&values), values.len()).unwrap();
            proptest::prop_assert!(dec.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
        }

        #[test]
        fn small_integer_blocks_round_trip(values in proptest::collection::vec(proptest::num::i64::ANY, 0..SMALL_BLOCK)) {
            let mut block = Vec::new();
            encode_numbers(&values, &mut block, &[]);
            proptest::prop_assert_eq!(decode_numbers::<i64>(block[0], &block[1..], values.len()).unwrap(), values.clone());
            let unsigned: Vec<u64> = values.iter().map(|v| *v as u64).collect();
            let mut block = Vec::new();
            encode_numbers(&unsigned, &mut block, &[]);
            proptest::prop_assert_eq!(decode_numbers::<u64>(block[0], &block[1..], values.len()).unwrap(), unsigned);
        }
    }

    #[test]
    fn small_blocks_skip_pco_and_stay_small() {
        // Scrape timestamps: one a second, a few milliseconds of jitter.
        let times: Vec<i64> = [0, 3, 1, 4, 2]
            .iter()
            .enumerate()
            .map(|(i, ms)| 1_700_000_000_000_000_000 + i as i64 * 1_000_000_000 + ms * 1_000_000)
            .collect();
        let block = encode_time(&times);
        assert_eq!(block[0], id::DELTA);
        assert!(
            block.len() < 1 + 5 * 8,
            "delta block of {} bytes",
            block.len()
        );
        assert_eq!(decode_time(&block, times.len()).unwrap(), times);
        // Counters: delta too; floats of a few points: no pco.
        let col = Column::Integer((0..10).map(|i| Some(1000 + i * 3)).collect());
        let (block, _) = encode_column(&col);
        assert_eq!(block[1], id::DELTA);
        assert_eq!(decode_column(&block, FieldType::Integer, 10).unwrap(), col);
        let col = Column::Float((0..10).map(|i| Some(0.5 + f64::from(i) * 0.37)).collect());
        let (block, _) = encode_column(&col);
        assert!(block[1] != id::PCO && block[1] != id::DECIMAL);
        assert_eq!(decode_column(&block, FieldType::Float, 10).unwrap(), col);
        // A truncated or overlong delta payload is an error.
        let mut block = encode_time(&times);
        block.pop();
        assert!(decode_time(&block, times.len()).is_err());
        assert!(decode_time(&encode_time(&times), times.len() - 1).is_err());
    }
}
