//! Immutable segment files: one table's rows from one buffer flush, sorted by (series, time),
//! each column stored as one compressed block (see [`super::codec`]) with a CRC32C, and a
//! footer with the time bounds, the series and where every block lives.
//!
//! ```text
//! +----------+-------------+-----------------+--------------+----------------+----------------+----------+
//! | "SUNDSEG1"| time block  | field blocks …  | footer (JSON)| footer_len u32 | footer_crc u32 | "SUNDEND1"|
//! +----------+-------------+-----------------+--------------+----------------+----------------+----------+
//! ```
//!
//! Integers are little-endian. Files are written to `*.tmp`, fsynced, renamed, and the
//! directory fsynced, so a file with the final name is always complete.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::buffer::{Buffer, TimeRange};
use super::codec;
use super::rows::{Column, Rows};
use super::schema::{FieldType, SeriesKey, SeriesRegistry, TableSchema};
use super::{Error, Result};

const MAGIC: &[u8; 8] = b"SUNDSEG1";
const END_MAGIC: &[u8; 8] = b"SUNDEND1";
const TRAILER: usize = 16;
/// Current footer version.
pub const VERSION: u32 = 1;

/// Where a block lives in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockRef {
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// One series of the segment: its tags and how many consecutive rows it has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesEntry {
    pub tags: SeriesKey,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// A field column of the segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldBlock {
    pub name: String,
    pub ty: FieldType,
    pub block: BlockRef,
}

/// The segment footer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Footer {
    pub version: u32,
    pub seq: u64,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub tags: Vec<String>,
    pub series: Vec<SeriesEntry>,
    pub time: BlockRef,
    pub fields: Vec<FieldBlock>,
}

/// A segment file that has been opened and checked.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub footer: Footer,
    /// Segment series index → the table's series id.
    pub series_ids: Vec<u32>,
    /// Size of the file in bytes.
    pub file_len: u64,
}

/// The file name of segment `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// Parses a segment's sequence number from its file name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".seg")?.parse().ok()
}

/// Writes `buffer` as segment `seq` in `dir`. Returns `None` for an empty buffer.
pub fn write(
    dir: &Path,
    seq: u64,
    buffer: &Buffer,
    schema: &TableSchema,
    keys: &[(u32, Arc<SeriesKey>)],
) -> Result<Option<Footer>> {
    let Some((min_time, max_time)) = buffer.time_bounds() else {
        return Ok(None);
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create table directory", dir, e))?;
        // Make the new directory entries (table, and maybe database) durable.
        for parent in dir.ancestors().skip(1).take(2) {
            super::fsync_dir(parent)?;
        }
    }
    let mut series = Vec::new();
    let mut times = Vec::with_capacity(buffer.rows());
    let mut columns: Vec<Column> = schema
        .fields
        .iter()
        .map(|(_, t)| Column::new(*t, buffer.rows()))
        .collect();
    for (sid, key) in keys {
        let sid = *sid;
        let mut n = 0u64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (t, values) in buffer.series_rows(sid) {
            times.push(*t);
            lo = lo.min(*t);
            hi = hi.max(*t);
            for (id, col) in columns.iter_mut().enumerate() {
                col.push(values.get(id).and_then(Option::as_ref));
            }
            n += 1;
        }
        series.push(SeriesEntry {
            tags: key.as_ref().clone(),
            rows: n,
            min_time: lo,
            max_time: hi,
        });
    }
    let mut body = Vec::with_capacity(buffer.bytes() / 4);
    body.extend_from_slice(MAGIC);
    let put = |bytes: Vec<u8>, body: &mut Vec<u8>| {
        let r = BlockRef {
            offset: body.len() as u64,
            len: bytes.len() as u64,
            crc: crc32c::crc32c(&bytes),
        };
        body.extend_from_slice(&bytes);
        r
    };
    let time = put(codec::encode_time(&times), &mut body);
    let mut fields = Vec::new();
    for ((name, ty), col) in schema.fields.iter().zip(&columns) {
        if col_is_all_null(col) {
            continue;
        }
        let block = put(codec::encode_column(col), &mut body);
        fields.push(FieldBlock {
            name: name.clone(),
            ty: *ty,
            block,
        });
    }
    let footer = Footer {
        version: VERSION,
        seq,
        rows: times.len() as u64,
        min_time,
        max_time,
        tags: schema.tags.clone(),
        series,
        time,
        fields,
    };
    let json = serde_json::to_vec(&footer).map_err(|e| Error::Internal(e.to_string()))?;
    body.extend_from_slice(&json);
    body.extend_from_slice(&(json.len() as u32).to_le_bytes());
    body.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
    body.extend_from_slice(END_MAGIC);

    let path = dir.join(file_name(seq));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io("create segment", &tmp, e))?;
    f.write_all(&body)
        .map_err(|e| Error::io("write segment", &tmp, e))?;
    f.sync_all()
        .map_err(|e| Error::io("fsync segment", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename segment", &path, e))?;
    super::fsync_dir(dir)?;
    Ok(Some(footer))
}

fn col_is_all_null(col: &Column) -> bool {
    match col {
        Column::Float(v) => v.iter().all(Option::is_none),
        Column::Integer(v) => v.iter().all(Option::is_none),
        Column::UInteger(v) => v.iter().all(Option::is_none),
        Column::String(v) => v.iter().all(Option::is_none),
        Column::Boolean(v) => v.iter().all(Option::is_none),
    }
}

/// Reads and checks the footer of a segment file.
pub fn read_footer(path: &Path) -> Result<(Footer, u64)> {
    let f = File::open(path).map_err(|e| Error::io("open segment", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("stat segment", path, e))?
        .len();
    let corrupt = |why: &str| Error::Corrupt(format!("{}: {why}", path.display()));
    if len < (MAGIC.len() + TRAILER) as u64 {
        return Err(corrupt("too short"));
    }
    let mut head = [0u8; 8];
    f.read_exact_at(&mut head, 0)
        .map_err(|e| Error::io("read segment", path, e))?;
    if &head != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let mut trailer = [0u8; TRAILER];
    f.read_exact_at(&mut trailer, len - TRAILER as u64)
        .map_err(|e| Error::io("read segment", path, e))?;
    if &trailer[8..] != END_MAGIC {
        return Err(corrupt("bad end magic"));
    }
    let flen = u32::from_le_bytes(trailer[0..4].try_into().expect("4")) as u64;
    let fcrc = u32::from_le_bytes(trailer[4..8].try_into().expect("4"));
    if flen + (TRAILER + MAGIC.len()) as u64 > len {
        return Err(corrupt("bad footer length"));
    }
    let mut json = vec![0u8; flen as usize];
    f.read_exact_at(&mut json, len - TRAILER as u64 - flen)
        .map_err(|e| Error::io("read segment", path, e))?;
    if crc32c::crc32c(&json) != fcrc {
        return Err(corrupt("footer checksum mismatch"));
    }
    let footer: Footer = serde_json::from_slice(&json).map_err(|e| corrupt(&e.to_string()))?;
    if footer.version != VERSION {
        return Err(corrupt("unsupported segment version"));
    }
    Ok((footer, len))
}

impl Segment {
    /// Opens a segment and maps its series into `registry`.
    pub fn open(path: &Path, registry: &mut SeriesRegistry) -> Result<Segment> {
        let (footer, file_len) = read_footer(path)?;
        let series_ids = footer
            .series
            .iter()
            .map(|s| registry.get_or_insert(&s.tags))
            .collect();
        Ok(Segment {
            path: path.to_path_buf(),
            footer,
            series_ids,
            file_len,
        })
    }

    pub fn overlaps(&self, range: TimeRange) -> bool {
        range.overlaps(self.footer.min_time, self.footer.max_time)
    }

    fn read_block(&self, f: &File, b: &BlockRef) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; b.len as usize];
        if b.offset.saturating_add(b.len) > self.file_len {
            return Err(Error::Corrupt(format!(
                "{}: block out of range",
                self.path.display()
            )));
        }
        f.read_exact_at(&mut buf, b.offset)
            .map_err(|e| Error::io("read segment", &self.path, e))?;
        if crc32c::crc32c(&buf) != b.crc {
            return Err(Error::Corrupt(format!(
                "{}: block checksum mismatch",
                self.path.display()
            )));
        }
        Ok(buf)
    }

    /// Decodes the rows in `range`, with the given fields as columns (nulls where the
    /// segment lacks a field). Returns the rows and the bytes read from disk.
    pub fn read(&self, range: TimeRange, fields: &[(String, FieldType)]) -> Result<(Rows, u64)> {
        let f = File::open(&self.path).map_err(|e| Error::io("open segment", &self.path, e))?;
        let rows = self.footer.rows as usize;
        let corrupt =
            |e: codec::CodecError| Error::Corrupt(format!("{}: {e}", self.path.display()));
        let mut bytes = self.footer.time.len;
        let time =
            codec::decode_time(&self.read_block(&f, &self.footer.time)?, rows).map_err(corrupt)?;
        let mut series = Vec::with_capacity(rows);
        for (i, s) in self.footer.series.iter().enumerate() {
            series.extend(std::iter::repeat_n(self.series_ids[i], s.rows as usize));
        }
        if series.len() != rows {
            return Err(Error::Corrupt(format!(
                "{}: series row counts",
                self.path.display()
            )));
        }
        let mut columns = Vec::with_capacity(fields.len());
        for (name, ty) in fields {
            match self
                .footer
                .fields
                .iter()
                .find(|fb| &fb.name == name && fb.ty == *ty)
            {
                Some(fb) => {
                    bytes += fb.block.len;
                    let block = self.read_block(&f, &fb.block)?;
                    columns.push(codec::decode_column(&block, *ty, rows).map_err(corrupt)?);
                }
                None => columns.push(Column::nulls(*ty, rows)),
            }
        }
        let mut out = Rows {
            series,
            time,
            columns,
        };
        if !(range.min <= self.footer.min_time && self.footer.max_time <= range.max) {
            out = filter_rows(out, |t| range.contains(t));
        }
        Ok((out, bytes))
    }
}

fn filter_rows(rows: Rows, keep: impl Fn(i64) -> bool) -> Rows {
    let mask: Vec<bool> = rows.time.iter().map(|t| keep(*t)).collect();
    fn pick<T: Clone>(v: Vec<T>, mask: &[bool]) -> Vec<T> {
        v.into_iter()
            .zip(mask)
            .filter(|(_, m)| **m)
            .map(|(x, _)| x)
            .collect()
    }
    Rows {
        series: pick(rows.series, &mask),
        time: pick(rows.time, &mask),
        columns: rows
            .columns
            .into_iter()
            .map(|c| match c {
                Column::Float(v) => Column::Float(pick(v, &mask)),
                Column::Integer(v) => Column::Integer(pick(v, &mask)),
                Column::UInteger(v) => Column::UInteger(pick(v, &mask)),
                Column::String(v) => Column::String(pick(v, &mask)),
                Column::Boolean(v) => Column::Boolean(pick(v, &mask)),
            })
            .collect(),
    }
}
