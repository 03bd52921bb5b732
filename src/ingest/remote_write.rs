//! Prometheus remote write 1.0 bodies: snappy (block format) around a protobuf
//! `WriteRequest`:
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; … }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds
//! ```
//!
//! Decoded by hand (the message is small and fixed); unknown fields are skipped, as protobuf
//! requires. Each sample becomes a row of the table named by `__name__`, the other labels
//! tags, the value a float field `value`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::storage::{PreparedSeries, TableSamples};

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid snappy body: {0}")]
    Snappy(String),
    #[error("invalid protobuf at byte {at}: {reason}")]
    Protobuf { at: usize, reason: &'static str },
    #[error("time series {0} has no __name__ label")]
    NoName(usize),
    #[error("the decompressed body would be {len} bytes, over the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
}

impl crate::error::Classify for DecodeError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            DecodeError::TooLarge { .. } => crate::error::Kind::LimitExceeded,
            _ => crate::error::Kind::InvalidInput,
        }
    }
}

/// A decoded request: float samples by table, each series' tags prepared once and shared
/// by its samples, and the series whose labels cannot be stored (with why).
#[derive(Debug, Default)]
pub struct Decoded {
    pub tables: Vec<TableSamples>,
    pub invalid: Vec<String>,
}

impl Decoded {
    /// Samples in all tables.
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole message, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, reason: &'static str) -> DecodeError {
        DecodeError::Protobuf {
            at: self.base + self.pos,
            reason,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.fail("truncated varint"))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail("varint too long"))
    }

    fn bytes(&mut self) -> Result<Reader<'a>, DecodeError> {
        let len = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.fail("length beyond the message"))?;
        let inner = Reader {
            buf: &self.buf[self.pos..end],
            pos: 0,
            base: self.base + self.pos,
        };
        self.pos = end;
        Ok(inner)
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| self.fail("truncated fixed64"))?;
        self.pos += 8;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A field's number and wire type.
    fn key(&mut self) -> Result<(u64, u8), DecodeError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed64().map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => {
                if self.pos + 4 > self.buf.len() {
                    return Err(self.fail("truncated fixed32"));
                }
                self.pos += 4;
                Ok(())
            }
            _ => Err(self.fail("unsupported wire type")),
        }
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let r = self.bytes()?;
        String::from_utf8(r.buf.to_vec()).map_err(|_| self.fail("string is not UTF-8"))
    }
}

/// Decompresses (snappy, block format) and decodes a `WriteRequest`. A body whose
/// decompressed size would pass `limit` is refused before anything is allocated for it.
pub fn decode(body: &[u8], limit: usize) -> Result<Decoded, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > limit {
        return Err(DecodeError::TooLarge { len, limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    decode_request(&raw)
}
/// Decodes an uncompressed `WriteRequest`.
pub fn decode_request(raw: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader {
        buf: raw,
        pos: 0,
        base: 0,
    };
    let mut out = Decoded::default();
    let mut by_table: HashMap<String, usize> = HashMap::new();
    let mut series_index = 0;
    while !r.done() {
        let (field, wire) = r.key()?;
        if field != 1 || wire != 2 {
            r.skip(wire)?;
            continue;
        }
        let mut ts = r.bytes()?;
        let mut name = None;
        let mut tags = Vec::new();
        let mut samples = Vec::new();
        while !ts.done() {
            let (field, wire) = ts.key()?;
            match (field, wire) {
                (1, 2) => {
                    let mut label = ts.bytes()?;
                    let (mut k, mut v) = (String::new(), String::new());
                    while !label.done() {
                        match label.key()? {
                            (1, 2) => k = label.string()?,
                            (2, 2) => v = label.string()?,
                            (_, w) => label.skip(w)?,
                        }
                    }
                    if k == "__name__" {
                        name = Some(v);
                    } else if !v.is_empty() {
                        tags.push((k, v));
                    }
                }
                (2, 2) => {
                    let mut sample = ts.bytes()?;
                    let (mut value, mut time) = (0.0f64, 0i64);
                    while !sample.done() {
                        match sample.key()? {
                            (1, 1) => value = f64::from_bits(sample.fixed64()?),
                            (2, 0) => time = sample.varint()? as i64,
                            (_, w) => sample.skip(w)?,
                        }
                    }
                    samples.push((value, time));
                }
                (_, w) => ts.skip(w)?,
            }
        }
        let Some(name) = name else {
            return Err(DecodeError::NoName(series_index));
        };
        series_index += 1;
        if samples.is_empty() {
            continue;
        }
        let series = match PreparedSeries::new(tags) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                out.invalid
                    .push(format!("series {} of {name}: {e}", series_index - 1));
                continue;
            }
        };
        let i = *by_table.entry(name.clone()).or_insert_with(|| {
            out.tables.push(TableSamples {
                table: name.as_str().into(),
                field: "value".into(),
                samples: Vec::new(),
            });
            out.tables.len() - 1
        });
        out.tables[i].samples.extend(
            samples
                .into_iter()
                .map(|(value, ms)| (series.clone(), ms.saturating_mul(1_000_000), value)),
        );
    }
    Ok(out)
}

/// One series to encode: its labels and its (value, milliseconds) samples.
pub type Series<'a> = (Vec<(&'a str, &'a str)>, Vec<(f64, i64)>);

/// Encodes series as a `WriteRequest` (tests and benchmarks build bodies with it).
pub fn encode_request(series: &[Series<'_>]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for (labels, samples) in series {
        let mut ts = Vec::new();
        for (k, v) in labels {
            let mut l = Vec::new();
            field_bytes(&mut l, 1, k.as_bytes());
            field_bytes(&mut l, 2, v.as_bytes());
            field_bytes(&mut ts, 1, &l);
        }
        for (value, ms) in samples {
            let mut s = vec![(1 << 3) | 1];
            s.extend_from_slice(&value.to_bits().to_le_bytes());
            varint(&mut s, (2 << 3) as u64);
            varint(&mut s, *ms as u64);
            field_bytes(&mut ts, 2, &s);
        }
        field_bytes(&mut out, 1, &ts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let raw = encode_request(&[
            (
                vec![("__name__", "up"), ("job", "node"), ("instance", "h:9100")],
                vec![(1.0, 1_714_557_600_000), (0.0, 1_714_557_615_000)],
            ),
            (vec![("__name__", "temp"), ("room", "")], vec![(-3.5, -1)]),
        ]);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let decoded = decode(&body, 1 << 20).unwrap();
        assert_eq!(decoded.len(), 3);
        let up = &decoded.tables[0];
        assert_eq!(&*up.table, "up");
        assert_eq!(
            up.samples[0].0.tags(),
            &vec![
                ("instance".to_string(), "h:9100".to_string()),
                ("job".to_string(), "node".to_string()),
            ]
        );
        assert!(
            Arc::ptr_eq(&up.samples[0].0, &up.samples[1].0),
            "one tag set per series, shared by its samples"
        );
        assert_eq!(up.samples[1].1, 1_714_557_615_000_000_000);
        let temp = &decoded.tables[1];
        assert!(
            temp.samples[0].0.tags().is_empty(),
            "empty label values are no label"
        );
        assert_eq!(temp.samples[0].2, -3.5);
        let no_name = encode_request(&[(vec![("job", "x")], vec![(1.0, 1)])]);
        assert!(matches!(
            decode_request(&no_name),
            Err(DecodeError::NoName(0))
        ));
        assert!(matches!(
            decode(b"not snappy", 1 << 20),
            Err(DecodeError::Snappy(_))
        ));
        assert!(matches!(
            decode_request(&raw[..raw.len() - 3]),
            Err(DecodeError::Protobuf { .. })
        ));
        // The size a body claims is checked before it is decompressed.
        assert_eq!(
            decode(&body, 10).unwrap_err(),
            DecodeError::TooLarge {
                len: raw.len(),
                limit: 10
            }
        );
        let bomb = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 1 << 20])
            .unwrap();
        assert!(bomb.len() < 100_000);
        assert!(matches!(
            decode(&bomb, 1000),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body, 1 << 20);
            let _ = decode_request(&body);
        }
    }
}
