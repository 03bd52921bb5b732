//! The write-ahead log: numbered files of length-prefixed, CRC32C-checked records, each
//! record one write batch: a database and its points, or a database and its samples of
//! prepared series (scrapes).
//!
//! ```text
//! file:   "SUNDWAL1" record*
//! record: +-------------+---------------+-------------------+
//!         | len u32 LE  | crc32c u32 LE | payload (len)     |
//!         +-------------+---------------+-------------------+
//! payload: version u8 = 1, db: str, n: uvarint, point*           (points)
//!        | version u8 = 2, db: str, n: uvarint, group*           (samples)
//! point:   table: str, ntags: uvarint, (key: str, value: str)*, nfields: uvarint,
//!          (key: str, type u8, value)*, time: i64 LE
//! group:   table: str, field: str, ndefs: uvarint, (ref: uvarint, ntags: uvarint,
//!          (key: str, value: str)*)*, nsamples: uvarint,
//!          (ref: uvarint, time delta: zigzag uvarint, value: f64 LE)*
//! str:     len uvarint, UTF-8 bytes
//! ```
//!
//! A samples record names each series by a number (`ref`) that the WAL file defined
//! once, in this record or an earlier one: the definition binds it to the database, table,
//! field and tags. A sample is then ~12 bytes instead of a point's ~100. Numbers are per
//! file (a new file defines its series again), so a file replays on its own. A sample's
//! time is the difference from the previous sample's in the group (the first: from 0);
//! a scrape's samples share a time, so this is mostly one byte.
//!
//! On replay, a record that is short or fails its checksum with good records after it is
//! damage: it is skipped (and quarantined by the caller) and the rest of the file replays;
//! one with nothing good after it is a torn tail from a crash mid-append, cut off.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::TableSamples;
use super::codec::{get_uvarint, put_uvarint, unzigzag, zigzag};
use super::schema::{FieldType, Point, PreparedSeries, Value};
use super::{Error, Result};

const MAGIC: &[u8; 8] = b"SUNDWAL1";
const HEADER: usize = 8;
const MAX_RECORD: usize = 1 << 30;
const POINTS: u8 = 1;
const SAMPLES: u8 = 2;

/// One write batch of points as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub db: String,
    pub points: Vec<Point>,
}

/// A decoded record.
#[derive(Debug)]
pub enum Record {
    Points(Batch),
    Samples {
        db: String,
        tables: Vec<TableSamples>,
    },
}

/// Source of the epochs that tag a writer's series numbers in [`PreparedSeries`]; 0 is
/// never handed out, so a fresh series (epoch 0) is always defined.
static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);

/// Numbers for the (database, table, field) groups a WAL file's series belong to; the
/// writer and replay number them alike.
#[derive(Default)]
struct GroupIds(HashMap<(String, Arc<str>, Arc<str>), u32>);

impl GroupIds {
    fn id(&mut self, db: &str, table: &Arc<str>, field: &Arc<str>) -> u32 {
        let next = self.0.len() as u32;
        *self
            .0
            .entry((db.to_string(), table.clone(), field.clone()))
            .or_insert(next)
    }
}

/// What the current WAL file has defined: the number of each group and, by series
/// number, the group it was defined for. A series' own number lives in the series
/// (`PreparedSeries::wal_ref`), tagged with the writer's epoch.
#[derive(Default)]
struct SeriesRefs {
    epoch: u32,
    groups: GroupIds,
    ref_group: Vec<u32>,
    /// Scratch buffers for a group's definitions and samples.
    defs: Vec<u8>,
    samples: Vec<u8>,
}

impl SeriesRefs {
    fn new() -> SeriesRefs {
        SeriesRefs {
            epoch: NEXT_EPOCH.fetch_add(1, Ordering::Relaxed),
            ..SeriesRefs::default()
        }
    }

    /// Forgets every definition (after a failed write): each series is defined again,
    /// under a new number, so no number can point to a definition that was not written.
    fn forget(&mut self) {
        self.epoch = NEXT_EPOCH.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends a samples payload to `out`.
    fn encode(&mut self, out: &mut Vec<u8>, db: &str, tables: &[TableSamples]) {
        out.push(SAMPLES);
        put_str(out, db);
        put_uvarint(out, tables.len() as u64);
        for t in tables {
            let group = self.groups.id(db, &t.table, &t.field);
            put_str(out, &t.table);
            put_str(out, &t.field);
            self.defs.clear();
            self.samples.clear();
            let (mut ndefs, mut prev_time) = (0u64, 0i64);
            for (series, time, value) in &t.samples {
                let tagged = series.wal_ref.load(Ordering::Relaxed);
                let r = tagged as u32;
                let r = if (tagged >> 32) as u32 == self.epoch
                    && self.ref_group.get(r as usize) == Some(&group)
                {
                    r
                } else {
                    let r = self.ref_group.len() as u32;
                    self.ref_group.push(group);
                    series.wal_ref.store(
                        u64::from(self.epoch) << 32 | u64::from(r),
                        Ordering::Relaxed,
                    );
                    put_uvarint(&mut self.defs, u64::from(r));
                    self.defs.extend_from_slice(&series.wal);
                    ndefs += 1;
                    r
                };
                put_uvarint(&mut self.samples, u64::from(r));
                put_uvarint(&mut self.samples, zigzag(time.wrapping_sub(prev_time)));
                prev_time = *time;
                self.samples.extend_from_slice(&value.to_le_bytes());
            }
            put_uvarint(out, ndefs);
            out.extend_from_slice(&self.defs);
            put_uvarint(out, t.samples.len() as u64);
            out.extend_from_slice(&self.samples);
        }
    }
}

/// Decodes the records of one WAL file in order, remembering the series they define.
#[derive(Default)]
pub struct FileReplay {
    groups: GroupIds,
    series: Vec<Option<(u32, Arc<PreparedSeries>)>>,
}

impl FileReplay {
    /// Decodes the next record of the file.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Record> {
        match payload.first() {
            Some(&POINTS) => decode_batch(payload).map(Record::Points),
            Some(&SAMPLES) => self.decode_samples(payload),
            _ => Err(Error::Corrupt("unknown WAL record version".into())),
        }
    }

    fn decode_samples(&mut self, payload: &[u8]) -> Result<Record> {
        let mut r = Reader {
            buf: payload,
            pos: 1,
        };
        let db = r.string()?;
        let ngroups = r.uvarint()? as usize;
        let mut tables = Vec::with_capacity(ngroups.min(1 << 16));
        for _ in 0..ngroups {
            let table: Arc<str> = r.string()?.into();
            let field: Arc<str> = r.string()?.into();
            let group = self.groups.id(&db, &table, &field);
            for _ in 0..r.uvarint()? {
                let id = usize::try_from(r.uvarint()?).map_err(|_| Reader::bad())?;
                if id > self.series.len() + (1 << 24) {
                    return Err(Reader::bad());
                }
                let ntags = r.uvarint()? as usize;
                let mut tags = Vec::with_capacity(ntags.min(1024));
                for _ in 0..ntags {
                    tags.push((r.string()?, r.string()?));
                }
                let series = PreparedSeries::new(tags)
                    .map_err(|e| Error::Corrupt(format!("WAL series definition: {e}")))?;
                if self.series.len() <= id {
                    self.series.resize(id + 1, None);
                }
                self.series[id] = Some((group, Arc::new(series)));
            }
            let n = r.uvarint()? as usize;
            let mut samples = Vec::with_capacity(n.min(1 << 20));
            let mut time = 0i64;
            for _ in 0..n {
                let id = r.uvarint()?;
                let series = match self.series.get(id as usize) {
                    Some(Some((g, series))) if *g == group => series.clone(),
                    _ => {
                        return Err(Error::Corrupt(
                            "WAL sample of a series this file did not define".into(),
                        ));
                    }
                };
                time = time.wrapping_add(unzigzag(r.uvarint()?));
                samples.push((series, time, f64::from_bits(r.u64()?)));
            }
            tables.push(TableSamples {
                table,
                field,
                samples,
            });
        }
        if r.pos != payload.len() {
            return Err(Reader::bad());
        }
        Ok(Record::Samples { db, tables })
    }
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a points payload to `out`.
fn encode_points(out: &mut Vec<u8>, db: &str, points: &[&Point]) {
    out.push(POINTS);
    put_str(out, db);
    put_uvarint(out, points.len() as u64);
    for p in points {
        put_str(out, &p.table);
        put_uvarint(out, p.tags.len() as u64);
        for (k, v) in &p.tags {
            put_str(out, k);
            put_str(out, v);
        }
        put_uvarint(out, p.fields.len() as u64);
        for (k, v) in &p.fields {
            put_str(out, k);
            out.push(v.field_type().code());
            match v {
                Value::Float(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::Integer(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::UInteger(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::String(x) => put_str(out, x),
                Value::Boolean(x) => out.push(u8::from(*x)),
            }
        }
        out.extend_from_slice(&p.time.to_le_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bad() -> Error {
        Error::Corrupt("malformed WAL record".into())
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).ok_or_else(Self::bad)?;
        let b = self.buf.get(self.pos..end).ok_or_else(Self::bad)?;
        self.pos = end;
        Ok(b)
    }
    fn uvarint(&mut self) -> Result<u64> {
        get_uvarint(self.buf, &mut self.pos).map_err(|_| Self::bad())
    }
    fn string(&mut self) -> Result<String> {
        let n = self.uvarint()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| Self::bad())
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }
}

/// Decodes a record payload.
pub fn decode_batch(payload: &[u8]) -> Result<Batch> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    if r.bytes(1)?[0] != POINTS {
        return Err(Error::Corrupt("unknown WAL record version".into()));
    }
    let db = r.string()?;
    let n = r.uvarint()? as usize;
    let mut points = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let table = r.string()?;
        let nt = r.uvarint()? as usize;
        let mut tags = Vec::with_capacity(nt.min(1024));
        for _ in 0..nt {
            tags.push((r.string()?, r.string()?));
        }
        let nf = r.uvarint()? as usize;
        let mut fields = Vec::with_capacity(nf.min(1024));
        for _ in 0..nf {
            let k = r.string()?;
            let ty = FieldType::from_code(r.bytes(1)?[0]).ok_or_else(Reader::bad)?;
            let v = match ty {
                FieldType::Float => Value::Float(f64::from_bits(r.u64()?)),
                FieldType::Integer => Value::Integer(r.u64()? as i64),
                FieldType::UInteger => Value::UInteger(r.u64()?),
                FieldType::String => Value::String(r.string()?),
                FieldType::Boolean => Value::Boolean(r.bytes(1)?[0] != 0),
            };
            fields.push((k, v));
        }
        let time = r.u64()? as i64;
        points.push(Point {
            table,
            tags,
            fields,
            time,
        });
    }
    Ok(Batch { db, points })
}

/// The file name of WAL file `id`.
pub fn file_name(id: u64) -> String {
    format!("{id:020}.wal")
}

/// The ids of the WAL files in `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list WAL", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list WAL", dir, e))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// What reading a WAL file found.
#[derive(Debug, Default)]
pub struct FileRead {
    /// The payloads of the good records, in order.
    pub records: Vec<Vec<u8>>,
    /// Whether a torn tail (a bad record with no good one after it) was cut off.
    pub cut: bool,
    /// Damaged byte ranges in the middle of the file (a bad record with good ones after
    /// it): skipped, for the caller to quarantine; the records after them are read.
    pub damaged: Vec<Damaged>,
}

/// A damaged stretch of a WAL file.
#[derive(Debug)]
pub struct Damaged {
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// The length of the good record framed at `data[pos..]`, if one is.
fn frame_at(data: &[u8], pos: usize) -> Option<usize> {
    let rest = data.get(pos..)?;
    if rest.len() < 9 {
        return None;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4"));
    if len == 0 || len > MAX_RECORD || rest.len() - 8 < len {
        return None;
    }
    let payload = &rest[8..8 + len];
    if !matches!(payload[0], POINTS | SAMPLES) || crc32c::crc32c(payload) != crc {
        return None;
    }
    Some(len)
}

/// Reads every good record of WAL file `id`. A bad record (short, over-long or failing
/// its checksum) followed by good ones is damage: it is skipped and reported, and reading
/// goes on at the next good record, so one flipped bit never drops the records after it.
/// A bad record with nothing good after it is a torn tail from a crash mid-append: it is
/// cut off the file.
pub fn read_file(dir: &Path, id: u64) -> Result<FileRead> {
    let path = dir.join(file_name(id));
    let mut data = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| Error::io("read WAL", &path, e))?;
    let mut out = FileRead::default();
    let mut good = 0usize;
    if data.len() >= HEADER && &data[..HEADER] == MAGIC {
        let mut pos = HEADER;
        good = HEADER;
        while pos < data.len() {
            if let Some(len) = frame_at(&data, pos) {
                out.records.push(data[pos + 8..pos + 8 + len].to_vec());
                pos += 8 + len;
                good = pos;
                continue;
            }
            match (pos + 1..data.len()).find(|&q| frame_at(&data, q).is_some()) {
                Some(next) => {
                    tracing::error!(path = %path.display(), offset = pos, bytes = next - pos,
                        "damaged WAL record skipped; the records after it are replayed");
                    out.damaged.push(Damaged {
                        offset: pos,
                        bytes: data[pos..next].to_vec(),
                    });
                    pos = next;
                }
                None => break,
            }
        }
    }
    out.cut = good != data.len();
    if out.cut {
        tracing::warn!(path = %path.display(), kept_bytes = good, dropped_bytes = data.len() - good, "cutting torn WAL tail");
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open WAL", &path, e))?;
        if good < HEADER {
            f.set_len(0)
                .map_err(|e| Error::io("truncate WAL", &path, e))?;
            drop(f);
            let mut f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open WAL", &path, e))?;
            f.write_all(MAGIC)
                .map_err(|e| Error::io("write WAL", &path, e))?;
            f.sync_all().map_err(|e| Error::io("fsync WAL", &path, e))?;
        } else {
            f.set_len(good as u64)
                .map_err(|e| Error::io("truncate WAL", &path, e))?;
            f.sync_all().map_err(|e| Error::io("fsync WAL", &path, e))?;
        }
    }
    Ok(out)
}

/// The open WAL file that records are appended to.
pub struct WalWriter {
    dir: PathBuf,
    id: u64,
    file: File,
    /// Bytes in the current file.
    len: u64,
    pending: Vec<u8>,
    refs: SeriesRefs,
    /// The largest record it writes ([`MAX_RECORD`]; smaller in tests).
    max_record: usize,
    /// Set after a failed write or fsync: the next commit starts a new file first.
    poisoned: bool,
    /// Called before each fsync (tests: to observe and fail syncs).
    pub sync_hook: Option<SyncHook>,
}

/// A test's hook into WAL fsyncs: runs before each, and an error it returns fails the
/// sync as the kernel's would.
pub type SyncHook = Arc<dyn Fn() -> std::io::Result<()> + Send + Sync>;

impl WalWriter {
    /// Marks the file unusable after a failed commit: the next commit starts a new one.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Creates WAL file `id` (which must not exist yet).
    pub fn create(dir: &Path, id: u64) -> Result<WalWriter> {
        let path = dir.join(file_name(id));
        let open = || OpenOptions::new().create_new(true).append(true).open(&path);
        let opened = match open() {
            // A file holding no record (an earlier attempt that failed, as on a full
            // disk, and could not be removed) is replaced; one with records never is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match std::fs::metadata(&path) {
                    Ok(m) if m.len() <= HEADER as u64 => {
                        std::fs::remove_file(&path)
                            .map_err(|e| Error::io("remove empty WAL", &path, e))?;
                        open()
                    }
                    _ => Err(e),
                }
            }
            other => other,
        };
        let mut file = opened.map_err(|e| Error::io("create WAL", &path, e))?;
        let started = file
            .write_all(MAGIC)
            .map_err(|e| Error::io("write WAL", &path, e))
            .and_then(|()| {
                file.sync_all()
                    .map_err(|e| Error::io("fsync WAL", &path, e))
            })
            .and_then(|()| super::fsync_dir(dir));
        if let Err(e) = started {
            // Leave nothing behind, so that the next attempt (once there is space) can
            // create the file again.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            id,
            file,
            len: HEADER as u64,
            pending: Vec::new(),
            refs: SeriesRefs::new(),
            max_record: MAX_RECORD,
            poisoned: false,
            sync_hook: None,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn len(&self) -> u64 {
        self.len + self.pending.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER as u64
    }

    /// Queues a record of points; [`WalWriter::commit`] writes and fsyncs the queued
    /// records.
    pub fn append_points(&mut self, db: &str, points: &[&Point]) -> Result<()> {
        self.frame(|out, _| encode_points(out, db, points))
    }

    /// Queues a record of samples of prepared series, defining in this file the series
    /// it has not defined yet (see the module docs).
    pub fn append_samples(&mut self, db: &str, tables: &[TableSamples]) -> Result<()> {
        self.frame(|out, refs| refs.encode(out, db, tables))
    }

    /// Queues a record whose payload `encode` appends, then fills in its length and
    /// checksum. A payload over [`MAX_RECORD`] is taken back and refused: its length
    /// would not fit the frame, and replay would read it as a torn tail.
    fn frame(&mut self, encode: impl FnOnce(&mut Vec<u8>, &mut SeriesRefs)) -> Result<()> {
        let start = self.pending.len();
        self.pending.extend_from_slice(&[0; 8]);
        encode(&mut self.pending, &mut self.refs);
        let size = self.pending.len() - start - 8;
        if size > self.max_record {
            self.pending.truncate(start);
            // Series it defined are not in the file after all: define them again.
            self.refs.forget();
            return Err(Error::TooLarge {
                size,
                limit: self.max_record,
            });
        }
        let payload = &self.pending[start + 8..];
        let (len, crc) = (payload.len() as u32, crc32c::crc32c(payload));
        self.pending[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.pending[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Writes queued records; with `sync`, waits until they are on stable storage and
    /// answers how long the fsync took.
    pub fn commit(&mut self, sync: bool) -> Result<Option<std::time::Duration>> {
        if self.poisoned {
            // The records pending were appended after the failure forgot the file's
            // series, so they define their own and can go to a new file as they are.
            match WalWriter::create(&self.dir, self.id + 1) {
                Ok(fresh) => {
                    tracing::info!(wal = fresh.id, "WAL continues in a new file");
                    self.file = fresh.file;
                    self.id = fresh.id;
                    self.len = fresh.len;
                    self.poisoned = false;
                }
                Err(e) => {
                    self.pending.clear();
                    self.refs.forget();
                    return Err(e);
                }
            }
        }
        let path = || self.dir.join(file_name(self.id));
        if !self.pending.is_empty() {
            if let Err(e) = self.file.write_all(&self.pending) {
                // Leave no partial record behind for the next append to follow.
                let _ = self.file.set_len(self.len);
                self.pending.clear();
                self.refs.forget();
                return Err(Error::io("write WAL", &path(), e));
            }
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        if sync {
            let started = std::time::Instant::now();
            let hooked = self.sync_hook.as_ref().map_or(Ok(()), |h| h());
            if let Err(e) = hooked.and_then(|()| self.file.sync_data()) {
                // What was written may be lost: define every series again.
                self.refs.forget();
                return Err(Error::io("fsync WAL", &path(), e));
            }
            return Ok(Some(started.elapsed()));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a batch as a record payload.
    fn encode_batch(db: &str, points: &[&Point]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + points.len() * 64);
        encode_points(&mut out, db, points);
        out
    }

    fn point(t: i64) -> Point {
        Point {
            table: "cpu".into(),
            tags: vec![("host".into(), "a".into())],
            fields: vec![
                ("f".into(), Value::Float(1.5)),
                ("i".into(), Value::Integer(-3)),
                ("u".into(), Value::UInteger(u64::MAX)),
                ("s".into(), Value::String("x\"y".into())),
                ("b".into(), Value::Boolean(true)),
            ],
            time: t,
        }
    }

    #[test]
    fn batch_round_trip() {
        let p = point(42);
        let b = decode_batch(&encode_batch("db", &[&p])).unwrap();
        assert_eq!(
            b,
            Batch {
                db: "db".into(),
                points: vec![p]
            }
        );
    }

    fn samples(table: &str, series: &[Arc<PreparedSeries>], time: i64) -> TableSamples {
        TableSamples {
            table: table.into(),
            field: "value".into(),
            samples: series
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), time + i as i64 % 2, time as f64 + i as f64 / 4.0))
                .collect(),
        }
    }

    /// A sample as (database, table, tags, time, value bits).
    type Flat = (String, String, Vec<(String, String)>, i64, u64);

    fn flat(records: &[Record]) -> Vec<Flat> {
        let mut out = Vec::new();
        for r in records {
            let Record::Samples { db, tables } = r else {
                panic!("a samples record");
            };
            for t in tables {
                for (s, time, v) in &t.samples {
                    out.push((
                        db.clone(),
                        t.table.to_string(),
                        s.tags().clone(),
                        *time,
                        v.to_bits(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn samples_define_each_series_once_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<Arc<PreparedSeries>> = (0..50)
            .map(|i| {
                let tags = vec![
                    ("job".into(), "node".into()),
                    ("instance".into(), "127.0.0.1:9100".into()),
                    ("series".into(), i.to_string()),
                ];
                Arc::new(PreparedSeries::new(tags).unwrap())
            })
            .collect();
        let mut w = WalWriter::create(dir.path(), 1).unwrap();
        let batches = [
            ("db", samples("up", &series, 1_000)),
            ("db", samples("up", &series, 2_000)),
            // The same series in another table and another database: defined again.
            ("db", samples("other", &series[..10], 3_000)),
            ("db2", samples("up", &series[..10], 4_000)),
            ("db", samples("up", &series[..5], -5)),
        ];
        let mut lens = Vec::new();
        for (db, t) in &batches {
            let before = w.len();
            w.append_samples(db, std::slice::from_ref(t)).unwrap();
            lens.push(w.len() - before);
        }
        w.append_points("db", &[&point(9)]).unwrap();
        w.commit(true).unwrap();
        // The second scrape of the same series carries no tags: far smaller.
        assert!(lens[1] * 3 < lens[0], "record sizes {lens:?}");
        assert!(lens[1] < 50 * 14, "{} bytes for 50 samples", lens[1]);

        let FileRead {
            records: payloads,
            cut,
            ..
        } = read_file(dir.path(), 1).unwrap();
        assert!(!cut);
        let mut replay = FileReplay::default();
        let mut records: Vec<Record> = payloads.iter().map(|p| replay.decode(p).unwrap()).collect();
        let Record::Points(b) = records.pop().unwrap() else {
            panic!("points last")
        };
        assert_eq!(b.points, vec![point(9)]);
        let expected: Vec<Record> = batches
            .iter()
            .map(|(db, t)| Record::Samples {
                db: db.to_string(),
                tables: vec![t.clone()],
            })
            .collect();
        assert_eq!(flat(&records), flat(&expected));

        // A new file defines its series again; a record read without the file's
        // earlier records is refused, not misread.
        let mut w2 = WalWriter::create(dir.path(), 2).unwrap();
        w2.append_samples("db", &[samples("up", &series, 5_000)])
            .unwrap();
        w2.commit(true).unwrap();
        let p2 = read_file(dir.path(), 2).unwrap().records;
        let mut replay = FileReplay::default();
        assert_eq!(flat(&[replay.decode(&p2[0]).unwrap()]).len(), 50);
        assert!(FileReplay::default().decode(&payloads[1]).is_err());
        // A torn second record: the first still replays.
        let path = dir.path().join(file_name(1));
        let data = fs::read(&path).unwrap();
        let first = 8 + 8 + payloads[0].len();
        fs::write(&path, &data[..first + 20]).unwrap();
        let FileRead {
            records: left, cut, ..
        } = read_file(dir.path(), 1).unwrap();
        assert!(cut);
        assert_eq!(left.len(), 1);
        assert_eq!(
            flat(&[FileReplay::default().decode(&left[0]).unwrap()]).len(),
            50
        );
    }

    /// A record over the limit is refused whole; the records around it are written and
    /// replayed, and nothing is read as a torn tail.
    #[test]
    fn oversized_records_are_refused_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1).unwrap();
        w.max_record = 200;
        w.append_points("db", &[&point(1)]).unwrap();
        let many: Vec<Point> = (0..50).map(point).collect();
        let refs: Vec<&Point> = many.iter().collect();
        assert!(matches!(
            w.append_points("db", &refs),
            Err(Error::TooLarge { limit: 200, .. })
        ));
        w.append_points("db", &[&point(2)]).unwrap();
        w.commit(true).unwrap();
        drop(w);
        let FileRead { records, cut, .. } = read_file(dir.path(), 1).unwrap();
        assert!(!cut);
        assert_eq!(records.len(), 2);
    }

    /// A file left by a creation that failed (a full disk) holds no record and is
    /// replaced by the next attempt; a file with records is never overwritten.
    #[test]
    fn a_failed_creation_never_blocks_the_next() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file_name(3)), &MAGIC[..2]).unwrap();
        let mut w = WalWriter::create(dir.path(), 3).expect("replaces the stub");
        w.append_points("db", &[&point(1)]).unwrap();
        w.commit(true).unwrap();
        drop(w);
        assert!(WalWriter::create(dir.path(), 3).is_err());
        assert_eq!(read_file(dir.path(), 3).unwrap().records.len(), 1);
    }

    #[test]
    fn torn_tail_is_cut_at_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1).unwrap();
        w.append_points("db", &[&point(1)]).unwrap();
        w.append_points("db", &[&point(2)]).unwrap();
        w.commit(true).unwrap();
        let good_len = w.len();
        drop(w);
        let path = dir.path().join(file_name(1));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap(); // a half-written record
        drop(f);
        let FileRead { records, cut, .. } = read_file(dir.path(), 1).unwrap();
        assert!(cut);
        assert_eq!(records.len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        let FileRead { records, cut, .. } = read_file(dir.path(), 1).unwrap();
        assert!(!cut);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn corrupt_payload_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 7).unwrap();
        w.append_points("db", &[&point(1)]).unwrap();
        w.append_points("db", &[&point(2)]).unwrap();
        w.commit(true).unwrap();
        drop(w);
        let path = dir.path().join(file_name(7));
        let mut data = fs::read(&path).unwrap();
        let n = data.len();
        data[n - 3] ^= 0xff; // flip a byte inside the second record
        fs::write(&path, &data).unwrap();
        let records = read_file(dir.path(), 7).unwrap().records;
        assert_eq!(records.len(), 1);
        assert_eq!(decode_batch(&records[0]).unwrap().points[0].time, 1);
    }

    /// A damaged record in the middle (a flipped bit, a wrecked length) costs that record
    /// only: the ones after it are read, the damage is reported, the file is not cut.
    #[test]
    fn damage_mid_file_skips_one_record_not_the_rest() {
        for wreck in [12usize, 0, 3] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = WalWriter::create(dir.path(), 1).unwrap();
            for t in 1..=5 {
                w.append_points("db", &[&point(t)]).unwrap();
            }
            w.commit(true).unwrap();
            drop(w);
            let path = dir.path().join(file_name(1));
            let mut data = fs::read(&path).unwrap();
            let first = read_file(dir.path(), 1).unwrap().records[0].len();
            // Byte `wreck` of the second record's frame: its length (0, 3) or payload.
            data[HEADER + 8 + first + wreck] ^= 0x5a;
            fs::write(&path, &data).unwrap();
            let read = read_file(dir.path(), 1).unwrap();
            let times: Vec<i64> = read
                .records
                .iter()
                .map(|r| decode_batch(r).unwrap().points[0].time)
                .collect();
            assert_eq!(times, [1, 3, 4, 5], "wrecked byte {wreck}");
            assert!(!read.cut);
            assert_eq!(read.damaged.len(), 1);
            assert_eq!(read.damaged[0].offset, HEADER + 8 + first);
            assert_eq!(fs::metadata(&path).unwrap().len() as usize, data.len());
        }
    }
}
