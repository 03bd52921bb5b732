//! Segment files, format v1: one table's rows of one time partition from one flush (or
//! compaction), sorted by (series, time). Every column of every series is its own block
//! (see [`super::codec`]), so a query for some series reads only their blocks; each block
//! has a CRC32C, and the footer holds min/max time per series and statistics per block.
//!
//! ```text
//! offset 0                                                               end
//! +-----------+--------------------------------------+--------+-----------+-----------+-----------+
//! | "SUNDSEG1"| series 0: time block, field blocks…  | footer | flen u32  | fcrc u32  | "SUNDEND1"|
//! |  8 bytes  | series 1: time block, field blocks…  | (lz4 of|  LE       |  LE       |  8 bytes  |
//! |           | …                                    |  JSON) |           |           |           |
//! +-----------+--------------------------------------+--------+-----------+-----------+-----------+
//! ```
//!
//! The footer ([`Footer`]) is JSON compressed with lz4 (size-prepended): version, sequence
//! number and generation (order of precedence when rows repeat), partition start, row count,
//! min/max time, the field columns, and per series its tags, row count, min/max time, and a
//! [`BlockRef`] (offset, length, CRC32C) plus [`ColumnStats`] (nulls, min, max) per column.
//! `replaces` names the files a compaction merged, so a crash between writing the output
//! and deleting the inputs never leaves duplicates.
//!
//! Files are written to `*.tmp`, fsynced, renamed, and the directory fsynced, so a file
//! with the final name is always complete.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::buffer::TimeRange;
use super::codec::{self, ColumnStats};
use super::rows::{Column, Rows};
use super::schema::{FieldType, SeriesKey, SeriesRegistry};
use super::{Error, Result};

const MAGIC: &[u8; 8] = b"SUNDSEG1";
const END_MAGIC: &[u8; 8] = b"SUNDEND1";
const TRAILER: usize = 16;
/// Current format version.
pub const VERSION: u32 = 1;
/// What block statistics of new files record (see [`Footer::stats_version`]).
pub const STATS_VERSION: u32 = 1;

/// Where a block lives in the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockRef {
    pub off: u64,
    pub len: u32,
    pub crc: u32,
}

/// A field block of one series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldMeta {
    pub block: BlockRef,
    pub stats: ColumnStats,
}

/// One series of the segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeriesMeta {
    pub tags: SeriesKey,
    pub rows: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub time: BlockRef,
    /// One entry per [`Footer::fields`]; `None` when the series has no value in that column.
    pub fields: Vec<Option<FieldMeta>>,
}

/// The segment footer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Footer {
    pub version: u32,
    pub seq: u64,
    pub generation: u32,
    pub partition: i64,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub fields: Vec<(String, FieldType)>,
    pub series: Vec<SeriesMeta>,
    #[serde(default)]
    pub replaces: Vec<String>,
    /// What the block statistics record: 0 (files before it existed) min, max and
    /// nulls; [`STATS_VERSION`] 1 also whether a float block holds NaN
    /// ([`ColumnStats::nan`]) and the last row's value ([`ColumnStats::last`]).
    #[serde(default)]
    pub stats_version: u32,
}

/// The rows of one series to write: timestamps ascending, one column per footer field.
pub struct SeriesRows {
    pub key: SeriesKey,
    pub time: Vec<i64>,
    pub columns: Vec<Column>,
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
    /// Set when a compaction replaced this segment: the file is deleted once the last
    /// reader (query snapshot) lets go of it.
    pub obsolete: std::sync::atomic::AtomicBool,
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.obsolete.load(std::sync::atomic::Ordering::SeqCst)
            && let Err(e) = fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not delete a compacted segment");
        }
    }
}

/// The file name of a segment.
pub fn file_name(seq: u64, generation: u32) -> String {
    format!("{seq:020}-{generation:04}.seg")
}

/// Parses (seq, generation) from a segment file name.
pub fn parse_file_name(name: &str) -> Option<(u64, u32)> {
    let (seq, generation) = name.strip_suffix(".seg")?.split_once('-')?;
    Some((seq.parse().ok()?, generation.parse().ok()?))
}

/// What to write: a segment's identity and content.
pub struct NewSegment<'a> {
    pub dir: &'a Path,
    pub seq: u64,
    pub generation: u32,
    pub partition: i64,
    pub fields: Vec<(String, FieldType)>,
    pub series: Vec<SeriesRows>,
    pub replaces: Vec<String>,
}

/// Writes a segment durably and returns it opened. `None` if there are no rows.
pub fn write(new: NewSegment<'_>, registry_ids: &[u32]) -> Result<Option<Segment>> {
    let rows: usize = new.series.iter().map(|s| s.time.len()).sum();
    if rows == 0 {
        return Ok(None);
    }
    let dir = new.dir;
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create segment directory", dir, e))?;
        for d in dir.ancestors().skip(1).take(3) {
            super::fsync_dir(d)?;
        }
    }
    let mut body = Vec::with_capacity(rows * 4);
    body.extend_from_slice(MAGIC);
    let put = |bytes: &[u8], body: &mut Vec<u8>| {
        let r = BlockRef {
            off: body.len() as u64,
            len: bytes.len() as u32,
            crc: crc32c::crc32c(bytes),
        };
        body.extend_from_slice(bytes);
        r
    };
    let mut metas = Vec::with_capacity(new.series.len());
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    for s in &new.series {
        if s.time.is_empty() {
            continue;
        }
        let lo = *s.time.iter().min().expect("rows");
        let hi = *s.time.iter().max().expect("rows");
        min_time = min_time.min(lo);
        max_time = max_time.max(hi);
        let time = put(&codec::encode_time(&s.time), &mut body);
        let mut fields = Vec::with_capacity(s.columns.len());
        for col in &s.columns {
            let (block, stats) = codec::encode_column(col);
            if stats.nulls as usize == col.len() {
                fields.push(None);
            } else {
                fields.push(Some(FieldMeta {
                    block: put(&block, &mut body),
                    stats,
                }));
            }
        }
        metas.push(SeriesMeta {
            tags: s.key.clone(),
            rows: s.time.len() as u32,
            min_time: lo,
            max_time: hi,
            time,
            fields,
        });
    }
    let footer = Footer {
        version: VERSION,
        seq: new.seq,
        generation: new.generation,
        partition: new.partition,
        rows: rows as u64,
        min_time,
        max_time,
        fields: new.fields,
        series: metas,
        replaces: new.replaces,
        stats_version: STATS_VERSION,
    };
    let json = serde_json::to_vec(&footer).map_err(|e| Error::Internal(e.to_string()))?;
    let packed = lz4_flex::compress_prepend_size(&json);
    body.extend_from_slice(&packed);
    body.extend_from_slice(&(packed.len() as u32).to_le_bytes());
    body.extend_from_slice(&crc32c::crc32c(&packed).to_le_bytes());
    body.extend_from_slice(END_MAGIC);

    let path = dir.join(file_name(new.seq, new.generation));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io("create segment", &tmp, e))?;
    f.write_all(&body)
        .map_err(|e| Error::io("write segment", &tmp, e))?;
    f.sync_all()
        .map_err(|e| Error::io("fsync segment", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename segment", &path, e))?;
    super::fsync_dir(dir)?;
    let mut footer = footer;
    for s in &mut footer.series {
        s.tags = Vec::new();
    }
    Ok(Some(Segment {
        path,
        series_ids: registry_ids.to_vec(),
        footer,
        file_len: body.len() as u64,
        obsolete: Default::default(),
    }))
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
    let flen = u64::from(u32::from_le_bytes(trailer[0..4].try_into().expect("4")));
    let fcrc = u32::from_le_bytes(trailer[4..8].try_into().expect("4"));
    if flen + (TRAILER + MAGIC.len()) as u64 > len {
        return Err(corrupt("bad footer length"));
    }
    let mut packed = vec![0u8; flen as usize];
    f.read_exact_at(&mut packed, len - TRAILER as u64 - flen)
        .map_err(|e| Error::io("read segment", path, e))?;
    if crc32c::crc32c(&packed) != fcrc {
        return Err(corrupt("footer checksum mismatch"));
    }
    // The size lz4 is told to allocate: at most what lz4 can expand to (255:1).
    let claimed = packed
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4")) as usize);
    if claimed > packed.len().saturating_mul(255) + 64 {
        return Err(corrupt("implausible footer size"));
    }
    let json = lz4_flex::decompress_size_prepended(&packed).map_err(|_| corrupt("footer lz4"))?;
    let footer: Footer = serde_json::from_slice(&json).map_err(|e| corrupt(&e.to_string()))?;
    if footer.version != VERSION {
        return Err(corrupt("unsupported segment version"));
    }
    if footer
        .series
        .iter()
        .any(|s| s.fields.len() != footer.fields.len())
    {
        return Err(corrupt("series and field lists disagree"));
    }
    Ok((footer, len))
}

/// Checks a segment file whole: its footer and every block's checksum (recovery does this
/// before it trusts a file, so damage is quarantined at start rather than found by a query).
pub fn verify_file(path: &Path) -> Result<()> {
    let (footer, len) = read_footer(path)?;
    let f = File::open(path).map_err(|e| Error::io("open segment", path, e))?;
    let mut buf = Vec::new();
    for s in &footer.series {
        let blocks = std::iter::once(&s.time).chain(s.fields.iter().flatten().map(|m| &m.block));
        for b in blocks {
            if b.off.saturating_add(u64::from(b.len)) > len {
                return Err(Error::Corrupt(format!(
                    "{}: block out of range",
                    path.display()
                )));
            }
            buf.resize(b.len as usize, 0);
            f.read_exact_at(&mut buf, b.off)
                .map_err(|e| Error::io("read segment", path, e))?;
            if crc32c::crc32c(&buf) != b.crc {
                return Err(Error::Corrupt(format!(
                    "{}: block checksum mismatch at byte {}",
                    path.display(),
                    b.off
                )));
            }
        }
    }
    Ok(())
}

impl Segment {
    /// Opens a segment and maps its series into `registry`.
    pub fn open(path: &Path, registry: &mut SeriesRegistry) -> Result<Segment> {
        let (mut footer, file_len) = read_footer(path)?;
        let series_ids = footer
            .series
            .iter()
            .map(|s| registry.get_or_insert(&s.tags).0)
            .collect();
        // The registry now holds the keys; a second copy per segment would cost memory
        // per series.
        for s in &mut footer.series {
            s.tags = Vec::new();
        }
        Ok(Segment {
            path: path.to_path_buf(),
            footer,
            series_ids,
            file_len,
            obsolete: Default::default(),
        })
    }

    pub fn overlaps(&self, range: TimeRange) -> bool {
        range.overlaps(self.footer.min_time, self.footer.max_time)
    }

    /// The file name (for `replaces`).
    pub fn name(&self) -> String {
        file_name(self.footer.seq, self.footer.generation)
    }

    pub(super) fn read_block(&self, f: &File, b: &BlockRef) -> Result<Vec<u8>> {
        if b.off.saturating_add(u64::from(b.len)) > self.file_len {
            return Err(Error::Corrupt(format!(
                "{}: block out of range",
                self.path.display()
            )));
        }
        let mut buf = vec![0u8; b.len as usize];
        f.read_exact_at(&mut buf, b.off)
            .map_err(|e| Error::io("read segment", &self.path, e))?;
        if crc32c::crc32c(&buf) != b.crc {
            return Err(Error::Corrupt(format!(
                "{}: block checksum mismatch",
                self.path.display()
            )));
        }
        Ok(buf)
    }

    /// Opens the file for reading blocks.
    pub fn file(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::io("open segment", &self.path, e))
    }

    /// Decodes the rows in `range` of the series in `series` (all when `None`), with the
    /// given fields as columns (nulls where the segment lacks a field). Returns the rows and
    /// the bytes read from disk.
    pub fn read(
        &self,
        range: TimeRange,
        series: Option<&RoaringBitmap>,
        fields: &[(String, FieldType)],
    ) -> Result<(Rows, u64)> {
        let types: Vec<FieldType> = fields.iter().map(|(_, t)| *t).collect();
        let mut out = Rows::new(&types);
        let f = self.file()?;
        let mut bytes = 0u64;
        for i in 0..self.footer.series.len() {
            if series.is_some_and(|s| !s.contains(self.series_ids[i])) {
                continue;
            }
            bytes += self.read_series(&f, i, range, fields, &mut out)?;
        }
        Ok((out, bytes))
    }

    /// Appends the rows in `range` of the segment's `i`-th series to `out`; returns the
    /// bytes read.
    pub fn read_series(
        &self,
        f: &File,
        i: usize,
        range: TimeRange,
        fields: &[(String, FieldType)],
        out: &mut Rows,
    ) -> Result<u64> {
        let meta = &self.footer.series[i];
        if !range.overlaps(meta.min_time, meta.max_time) {
            return Ok(0);
        }
        let corrupt =
            |e: codec::CodecError| Error::Corrupt(format!("{}: {e}", self.path.display()));
        let sid = self.series_ids[i];
        let rows = meta.rows as usize;
        let mut bytes = u64::from(meta.time.len);
        let time = codec::decode_time(&self.read_block(f, &meta.time)?, rows).map_err(corrupt)?;
        let mut columns = Vec::with_capacity(fields.len());
        for (name, ty) in fields {
            let pos = self
                .footer
                .fields
                .iter()
                .position(|(n, t)| n == name && t == ty);
            match pos.and_then(|c| meta.fields[c].as_ref()) {
                Some(fm) => {
                    bytes += u64::from(fm.block.len);
                    let block = self.read_block(f, &fm.block)?;
                    columns.push(codec::decode_column(&block, *ty, rows).map_err(corrupt)?);
                }
                None => columns.push(Column::nulls(*ty, rows)),
            }
        }
        if range.min <= meta.min_time && meta.max_time <= range.max {
            // The whole block is in range: move the values over.
            out.series.extend(std::iter::repeat_n(sid, time.len()));
            out.time.extend_from_slice(&time);
            for (dst, src) in out.columns.iter_mut().zip(columns) {
                dst.append(src);
            }
            return Ok(bytes);
        }
        let keep: Vec<bool> = time.iter().map(|t| range.contains(*t)).collect();
        for (r, t) in time.iter().enumerate() {
            if keep[r] {
                out.series.push(sid);
                out.time.push(*t);
            }
        }
        for (dst, src) in out.columns.iter_mut().zip(columns) {
            dst.append_masked(src, &keep);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content of the committed fixture `tests/data/segment-v1.seg`.
    fn fixture() -> (Vec<(String, FieldType)>, Vec<SeriesRows>) {
        let fields = vec![
            ("f".to_string(), FieldType::Float),
            ("i".to_string(), FieldType::Integer),
            ("u".to_string(), FieldType::UInteger),
            ("s".to_string(), FieldType::String),
            ("b".to_string(), FieldType::Boolean),
        ];
        let key = |h: &str| {
            vec![
                ("dc".to_string(), "eu".to_string()),
                ("host".to_string(), h.to_string()),
            ]
        };
        let n = 300;
        let a = SeriesRows {
            key: key("a"),
            time: (0..n)
                .map(|i| 1_451_606_400_000_000_000 + i * 10_000_000_000)
                .collect(),
            columns: vec![
                Column::Float((0..n).map(|i| Some((i as f64) * 0.25)).collect()),
                Column::Integer((0..n).map(|i| Some(i * i - 50)).collect()),
                Column::UInteger(
                    (0..n)
                        .map(|i| (i % 3 != 0).then_some(u64::MAX - i as u64))
                        .collect(),
                ),
                Column::String((0..n).map(|i| Some(format!("state{}", i % 4))).collect()),
                Column::Boolean((0..n).map(|i| Some(i % 2 == 0)).collect()),
            ],
        };
        let b = SeriesRows {
            key: key("b"),
            time: vec![5, 7, 1_000_000_000_000],
            columns: vec![
                Column::Float(vec![Some(std::f64::consts::PI), None, Some(-0.0)]),
                Column::Integer(vec![None, None, None]),
                Column::UInteger(vec![Some(1), Some(2), Some(3)]),
                Column::String(vec![
                    Some("ünicode \"x\"".into()),
                    None,
                    Some(String::new()),
                ]),
                Column::Boolean(vec![None, Some(true), None]),
            ],
        };
        (fields, vec![a, b])
    }

    /// Writes the fixture content as segment `seq` in `dir`.
    fn write_fixture(dir: &Path, seq: u64) -> Segment {
        let (fields, series) = fixture();
        let new = NewSegment {
            dir,
            seq,
            generation: 0,
            partition: 0,
            fields,
            series,
            replaces: Vec::new(),
        };
        write(new, &[0, 1]).unwrap().unwrap()
    }

    /// A segment written by format v1 must stay readable: this reads a file committed to
    /// the repository. Set `SUNDIAL_REGENERATE_FIXTURES=1` to rewrite it (only when the
    /// format version changes, keeping the old file for the old version's reader).
    #[test]
    fn reads_committed_v1_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let path = dir.join("segment-v1.seg");
        let (fields, series) = fixture();
        if std::env::var_os("SUNDIAL_REGENERATE_FIXTURES").is_some() {
            let tmp = tempfile::tempdir().unwrap();
            let seg = write_fixture(tmp.path(), 7);
            std::fs::copy(&seg.path, &path).unwrap();
            return;
        }
        let mut registry = SeriesRegistry::default();
        let seg = Segment::open(&path, &mut registry).expect("the committed v1 fixture opens");
        assert_eq!(seg.footer.version, 1);
        assert_eq!(seg.footer.seq, 7);
        assert_eq!(seg.footer.rows, 303);
        assert_eq!(seg.footer.fields, fields);
        let (rows, bytes) = seg.read(TimeRange::ALL, None, &fields).unwrap();
        assert!(bytes > 0);
        let mut expected_time = Vec::new();
        let mut expected = Rows::new(&fields.iter().map(|(_, t)| *t).collect::<Vec<_>>());
        for (sid, s) in series.iter().enumerate() {
            expected
                .series
                .extend(std::iter::repeat_n(sid as u32, s.time.len()));
            expected_time.extend(&s.time);
            for (dst, src) in expected.columns.iter_mut().zip(&s.columns) {
                dst.append_masked(src.clone(), &vec![true; src.len()]);
            }
        }
        expected.time = expected_time;
        assert_eq!(format!("{rows:?}"), format!("{expected:?}"));
        // Only host b, only its last row.
        let only_b: RoaringBitmap = [1u32].into_iter().collect();
        let (rows, _) = seg
            .read(
                TimeRange {
                    min: 100,
                    max: i64::MAX,
                },
                Some(&only_b),
                &fields[..1],
            )
            .unwrap();
        assert_eq!(rows.time, vec![1_000_000_000_000]);
    }

    #[test]
    fn corruption_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let (fields, _) = fixture();
        let seg = write_fixture(tmp.path(), 1);
        let mut data = std::fs::read(&seg.path).unwrap();
        data[20] ^= 0x55; // inside the first block
        std::fs::write(&seg.path, &data).unwrap();
        let mut registry = SeriesRegistry::default();
        let seg = Segment::open(&seg.path, &mut registry).unwrap();
        assert!(matches!(
            seg.read(TimeRange::ALL, None, &fields),
            Err(Error::Corrupt(_))
        ));
        let n = data.len();
        data[n - 20] ^= 0x55; // inside the footer
        std::fs::write(&seg.path, &data).unwrap();
        assert!(matches!(read_footer(&seg.path), Err(Error::Corrupt(_))));
    }
}
