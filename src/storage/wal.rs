//! The write-ahead log: numbered files of length-prefixed, CRC32C-checked records, each
//! record one write batch (a database and its points).
//!
//! ```text
//! file:   "SUNDWAL1" record*
//! record: +-------------+---------------+-------------------+
//!         | len u32 LE  | crc32c u32 LE | payload (len)     |
//!         +-------------+---------------+-------------------+
//! payload: version u8 = 1, db: str, n: uvarint, point*
//! point:   table: str, ntags: uvarint, (key: str, value: str)*, nfields: uvarint,
//!          (key: str, type u8, value)*, time: i64 LE
//! str:     len uvarint, UTF-8 bytes
//! ```
//!
//! On replay, a record that is short or fails its checksum ends the log: the file is cut
//! there (a torn tail from a crash mid-append) and later files are ignored.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::codec::{get_uvarint, put_uvarint};
use super::schema::{FieldType, Point, Value};
use super::{Error, Result};

const MAGIC: &[u8; 8] = b"SUNDWAL1";
const HEADER: usize = 8;
const MAX_RECORD: usize = 1 << 30;

/// One write batch as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub db: String,
    pub points: Vec<Point>,
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Encodes prepared samples as a record payload, in the same format as
/// [`encode_batch`] (one float field per point), so replay reads them as points.
pub fn encode_samples(db: &str, tables: &[super::TableSamples]) -> Vec<u8> {
    let n: usize = tables.iter().map(|t| t.samples.len()).sum();
    let mut out = Vec::with_capacity(64 + n * 96);
    out.push(1);
    put_str(&mut out, db);
    put_uvarint(&mut out, n as u64);
    for t in tables {
        for (series, time, value) in &t.samples {
            put_str(&mut out, &t.table);
            out.extend_from_slice(&series.wal);
            put_uvarint(&mut out, 1);
            put_str(&mut out, &t.field);
            out.push(super::FieldType::Float.code());
            out.extend_from_slice(&value.to_le_bytes());
            out.extend_from_slice(&time.to_le_bytes());
        }
    }
    out
}

/// Encodes a batch as a record payload.
pub fn encode_batch(db: &str, points: &[&Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + points.len() * 64);
    out.push(1);
    put_str(&mut out, db);
    put_uvarint(&mut out, points.len() as u64);
    for p in points {
        put_str(&mut out, &p.table);
        put_uvarint(&mut out, p.tags.len() as u64);
        for (k, v) in &p.tags {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        put_uvarint(&mut out, p.fields.len() as u64);
        for (k, v) in &p.fields {
            put_str(&mut out, k);
            out.push(v.field_type().code());
            match v {
                Value::Float(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::Integer(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::UInteger(x) => out.extend_from_slice(&x.to_le_bytes()),
                Value::String(x) => put_str(&mut out, x),
                Value::Boolean(x) => out.push(u8::from(*x)),
            }
        }
        out.extend_from_slice(&p.time.to_le_bytes());
    }
    out
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
    if r.bytes(1)?[0] != 1 {
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

/// Reads every good record of WAL file `id`. A torn or corrupt tail is cut off the file.
/// Returns the payloads and whether the file was cut.
pub fn read_file(dir: &Path, id: u64) -> Result<(Vec<Vec<u8>>, bool)> {
    let path = dir.join(file_name(id));
    let mut data = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| Error::io("read WAL", &path, e))?;
    let mut records = Vec::new();
    let mut good = 0usize;
    if data.len() >= HEADER && &data[..HEADER] == MAGIC {
        good = HEADER;
        loop {
            let rest = &data[good..];
            if rest.len() < 8 {
                break;
            }
            let len = u32::from_le_bytes(rest[0..4].try_into().expect("4")) as usize;
            let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4"));
            if len > MAX_RECORD || rest.len() < 8 + len {
                break;
            }
            let payload = &rest[8..8 + len];
            if crc32c::crc32c(payload) != crc {
                break;
            }
            records.push(payload.to_vec());
            good += 8 + len;
        }
    }
    let cut = good != data.len();
    if cut {
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
    Ok((records, cut))
}

/// The open WAL file that records are appended to.
pub struct WalWriter {
    dir: PathBuf,
    id: u64,
    file: File,
    /// Bytes in the current file.
    len: u64,
    pending: Vec<u8>,
}

impl WalWriter {
    /// Creates WAL file `id` (which must not exist yet).
    pub fn create(dir: &Path, id: u64) -> Result<WalWriter> {
        let path = dir.join(file_name(id));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("create WAL", &path, e))?;
        file.write_all(MAGIC)
            .map_err(|e| Error::io("write WAL", &path, e))?;
        file.sync_all()
            .map_err(|e| Error::io("fsync WAL", &path, e))?;
        super::fsync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            id,
            file,
            len: HEADER as u64,
            pending: Vec::new(),
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

    /// Queues a record; [`WalWriter::commit`] writes and fsyncs the queued records.
    pub fn append(&mut self, payload: &[u8]) {
        self.pending
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.pending
            .extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        self.pending.extend_from_slice(payload);
    }

    /// Writes queued records; with `sync`, waits until they are on stable storage.
    pub fn commit(&mut self, sync: bool) -> Result<()> {
        let path = || self.dir.join(file_name(self.id));
        if !self.pending.is_empty() {
            if let Err(e) = self.file.write_all(&self.pending) {
                // Leave no partial record behind for the next append to follow.
                let _ = self.file.set_len(self.len);
                self.pending.clear();
                return Err(Error::io("write WAL", &path(), e));
            }
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        if sync {
            let started = std::time::Instant::now();
            self.file
                .sync_data()
                .map_err(|e| Error::io("fsync WAL", &path(), e))?;
            crate::metrics::METRICS.wal_fsync.observe(started.elapsed());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn torn_tail_is_cut_at_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1).unwrap();
        w.append(&encode_batch("db", &[&point(1)]));
        w.append(&encode_batch("db", &[&point(2)]));
        w.commit(true).unwrap();
        let good_len = w.len();
        drop(w);
        let path = dir.path().join(file_name(1));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap(); // a half-written record
        drop(f);
        let (records, cut) = read_file(dir.path(), 1).unwrap();
        assert!(cut);
        assert_eq!(records.len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        let (records, cut) = read_file(dir.path(), 1).unwrap();
        assert!(!cut);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn corrupt_payload_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 7).unwrap();
        w.append(&encode_batch("db", &[&point(1)]));
        w.append(&encode_batch("db", &[&point(2)]));
        w.commit(true).unwrap();
        drop(w);
        let path = dir.path().join(file_name(7));
        let mut data = fs::read(&path).unwrap();
        let n = data.len();
        data[n - 3] ^= 0xff; // flip a byte inside the second record
        fs::write(&path, &data).unwrap();
        let (records, _) = read_file(dir.path(), 7).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(decode_batch(&records[0]).unwrap().points[0].time, 1);
    }
}
