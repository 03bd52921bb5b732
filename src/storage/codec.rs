//! Column codecs for segment blocks: zigzag varint deltas for timestamps and integers,
//! raw little-endian floats, length-prefixed strings and bit-packed booleans, each with an
//! optional validity bitmap, and the whole block compressed with lz4.
//!
//! Block payload (before lz4, which prepends the uncompressed size):
//!
//! ```text
//! +-----------+-----------------------------+------------------------+
//! | nulls: u8 | validity bitmap (if nulls=1) | values of present rows |
//! +-----------+-----------------------------+------------------------+
//! ```

use super::rows::Column;
use super::schema::FieldType;

/// A block could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt column block: {0}")]
pub struct CodecError(pub &'static str);

type Result<T> = std::result::Result<T, CodecError>;

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

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes timestamps as zigzag varint deltas.
pub fn encode_time(times: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(times.len() * 2);
    let mut prev = 0i64;
    for &t in times {
        put_uvarint(&mut out, zigzag(t.wrapping_sub(prev)));
        prev = t;
    }
    lz4_flex::compress_prepend_size(&out)
}

pub fn decode_time(block: &[u8], rows: usize) -> Result<Vec<i64>> {
    let raw = decompress(block)?;
    let mut pos = 0;
    let mut out = Vec::with_capacity(rows);
    let mut prev = 0i64;
    for _ in 0..rows {
        prev = prev.wrapping_add(unzigzag(get_uvarint(&raw, &mut pos)?));
        out.push(prev);
    }
    Ok(out)
}

fn decompress(block: &[u8]) -> Result<Vec<u8>> {
    if block.len() >= 4 {
        let size = u32::from_le_bytes([block[0], block[1], block[2], block[3]]) as usize;
        // A corrupt size must not make us allocate absurd amounts.
        if size > 1 << 32 || size > block.len().saturating_mul(255) + 64 {
            return Err(CodecError("implausible block size"));
        }
    }
    lz4_flex::decompress_size_prepended(block).map_err(|_| CodecError("lz4"))
}

fn put_validity<T>(out: &mut Vec<u8>, values: &[Option<T>]) {
    if values.iter().all(Option::is_some) {
        out.push(0);
        return;
    }
    out.push(1);
    let mut bits = vec![0u8; values.len().div_ceil(8)];
    for (i, v) in values.iter().enumerate() {
        if v.is_some() {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bits);
}

fn get_validity(raw: &[u8], pos: &mut usize, rows: usize) -> Result<Vec<bool>> {
    let flag = *raw.get(*pos).ok_or(CodecError("truncated validity"))?;
    *pos += 1;
    match flag {
        0 => Ok(vec![true; rows]),
        1 => {
            let n = rows.div_ceil(8);
            let bits = raw
                .get(*pos..*pos + n)
                .ok_or(CodecError("truncated validity"))?;
            *pos += n;
            Ok((0..rows)
                .map(|i| bits[i / 8] & (1 << (i % 8)) != 0)
                .collect())
        }
        _ => Err(CodecError("bad validity flag")),
    }
}

/// Encodes one field column.
pub fn encode_column(col: &Column) -> Vec<u8> {
    let mut out = Vec::with_capacity(col.len() * 4 + 8);
    match col {
        Column::Float(v) => {
            put_validity(&mut out, v);
            for x in v.iter().flatten() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Column::Integer(v) => {
            put_validity(&mut out, v);
            let mut prev = 0i64;
            for &x in v.iter().flatten() {
                put_uvarint(&mut out, zigzag(x.wrapping_sub(prev)));
                prev = x;
            }
        }
        Column::UInteger(v) => {
            put_validity(&mut out, v);
            let mut prev = 0u64;
            for &x in v.iter().flatten() {
                put_uvarint(&mut out, zigzag(x.wrapping_sub(prev) as i64));
                prev = x;
            }
        }
        Column::String(v) => {
            put_validity(&mut out, v);
            for x in v.iter().flatten() {
                put_uvarint(&mut out, x.len() as u64);
                out.extend_from_slice(x.as_bytes());
            }
        }
        Column::Boolean(v) => {
            put_validity(&mut out, v);
            let present: Vec<bool> = v.iter().flatten().copied().collect();
            let mut bits = vec![0u8; present.len().div_ceil(8)];
            for (i, b) in present.iter().enumerate() {
                if *b {
                    bits[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bits);
        }
    }
    lz4_flex::compress_prepend_size(&out)
}

/// Decodes a field column of `rows` rows.
pub fn decode_column(block: &[u8], ty: FieldType, rows: usize) -> Result<Column> {
    let raw = decompress(block)?;
    let mut pos = 0;
    let valid = get_validity(&raw, &mut pos, rows)?;
    let col = match ty {
        FieldType::Float => {
            let mut out = Vec::with_capacity(rows);
            for &ok in &valid {
                out.push(if ok {
                    let b = raw
                        .get(pos..pos + 8)
                        .ok_or(CodecError("truncated floats"))?;
                    pos += 8;
                    Some(f64::from_le_bytes(b.try_into().expect("8 bytes")))
                } else {
                    None
                });
            }
            Column::Float(out)
        }
        FieldType::Integer => {
            let mut out = Vec::with_capacity(rows);
            let mut prev = 0i64;
            for &ok in &valid {
                out.push(if ok {
                    prev = prev.wrapping_add(unzigzag(get_uvarint(&raw, &mut pos)?));
                    Some(prev)
                } else {
                    None
                });
            }
            Column::Integer(out)
        }
        FieldType::UInteger => {
            let mut out = Vec::with_capacity(rows);
            let mut prev = 0u64;
            for &ok in &valid {
                out.push(if ok {
                    prev = prev.wrapping_add(unzigzag(get_uvarint(&raw, &mut pos)?) as u64);
                    Some(prev)
                } else {
                    None
                });
            }
            Column::UInteger(out)
        }
        FieldType::String => {
            let mut out = Vec::with_capacity(rows);
            for &ok in &valid {
                out.push(if ok {
                    let len = get_uvarint(&raw, &mut pos)? as usize;
                    let end = pos.checked_add(len).ok_or(CodecError("bad length"))?;
                    let b = raw.get(pos..end).ok_or(CodecError("truncated string"))?;
                    pos = end;
                    Some(String::from_utf8(b.to_vec()).map_err(|_| CodecError("invalid UTF-8"))?)
                } else {
                    None
                });
            }
            Column::String(out)
        }
        FieldType::Boolean => {
            let n = valid.iter().filter(|v| **v).count();
            let bits = raw
                .get(pos..pos + n.div_ceil(8))
                .ok_or(CodecError("truncated bools"))?;
            let mut k = 0;
            let mut out = Vec::with_capacity(rows);
            for &ok in &valid {
                out.push(if ok {
                    let b = bits[k / 8] & (1 << (k % 8)) != 0;
                    k += 1;
                    Some(b)
                } else {
                    None
                });
            }
            Column::Boolean(out)
        }
    };
    Ok(col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = vec![i64::MIN, -5, 0, 10, 20, 30, i64::MAX];
        assert_eq!(decode_time(&encode_time(&t), t.len()).unwrap(), t);
        let cols = [
            Column::Float(vec![Some(1.5), None, Some(-0.0), Some(f64::MAX)]),
            Column::Integer(vec![Some(i64::MIN), Some(i64::MAX), None, Some(0)]),
            Column::UInteger(vec![Some(u64::MAX), Some(0), None, Some(7)]),
            Column::String(vec![
                Some("a".into()),
                None,
                Some("".into()),
                Some("ünï".into()),
            ]),
            Column::Boolean(vec![Some(true), None, Some(false), Some(true)]),
        ];
        for c in cols {
            let back = decode_column(&encode_column(&c), c.field_type(), c.len()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{c:?}"));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for ty in [
            FieldType::Float,
            FieldType::Integer,
            FieldType::String,
            FieldType::Boolean,
        ] {
            assert!(decode_column(&[1, 2, 3, 4, 5, 6], ty, 10).is_err());
            assert!(decode_column(&[], ty, 10).is_err());
        }
    }
}
