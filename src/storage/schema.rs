//! The data model the engine stores: points, typed field values, table schemas and series.

use std::collections::HashMap;
use std::sync::Arc;

use super::index::TagIndex;

/// The type of a field column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FieldType {
    /// `DOUBLE PRECISION`.
    Float,
    /// `BIGINT` (line protocol `12i`).
    Integer,
    /// `NUMERIC(20,0)` to SQL (line protocol `12u`).
    UInteger,
    /// `TEXT`.
    String,
    /// `BOOLEAN`.
    Boolean,
}

impl FieldType {
    pub(crate) fn code(self) -> u8 {
        match self {
            FieldType::Float => 1,
            FieldType::Integer => 2,
            FieldType::UInteger => 3,
            FieldType::String => 4,
            FieldType::Boolean => 5,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => FieldType::Float,
            2 => FieldType::Integer,
            3 => FieldType::UInteger,
            4 => FieldType::String,
            5 => FieldType::Boolean,
            _ => return None,
        })
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::UInteger => "unsigned integer",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        })
    }
}

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Integer(i64),
    UInteger(u64),
    String(String),
    Boolean(bool),
}

impl Value {
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Float(_) => FieldType::Float,
            Value::Integer(_) => FieldType::Integer,
            Value::UInteger(_) => FieldType::UInteger,
            Value::String(_) => FieldType::String,
            Value::Boolean(_) => FieldType::Boolean,
        }
    }

    /// Memory held outside the value itself, for buffer accounting.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Value::String(s) => s.capacity(),
            _ => 0,
        }
    }
}

/// A point to store: one row of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub table: String,
    /// Tag pairs; the engine sorts them by key.
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Value)>,
    /// Nanoseconds since the Unix epoch.
    pub time: i64,
}

/// The tag set of a series, sorted by tag key.
pub type SeriesKey = Vec<(String, String)>;

/// A series a writer sends again and again (a scrape target's cache keeps one per
/// exposed series): its tags sorted and checked once, their WAL encoding, and the series
/// id the table gave it, so a repeated write skips the registry lookup.
#[derive(Debug)]
pub struct PreparedSeries {
    key: SeriesKey,
    /// `ntags (key value)*` as the WAL writes tags.
    pub(crate) wal: Box<[u8]>,
    /// `table id << 32 | series id` of the last table it was written to.
    cached: std::sync::atomic::AtomicU64,
    /// `epoch << 32 | number` under which the WAL writer last defined it (see `wal`).
    pub(crate) wal_ref: std::sync::atomic::AtomicU64,
}

impl PreparedSeries {
    /// Sorts and checks the tags (no reserved `time`, no NUL).
    pub fn new(mut tags: SeriesKey) -> Result<PreparedSeries, SchemaError> {
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        let mut wal = Vec::with_capacity(tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        super::codec::put_uvarint(&mut wal, tags.len() as u64);
        for (k, v) in &tags {
            if k == TIME_COLUMN {
                return Err(SchemaError::ReservedName);
            }
            if k.contains('\0') || v.contains('\0') {
                return Err(SchemaError::NulInTag);
            }
            super::wal::put_str(&mut wal, k);
            super::wal::put_str(&mut wal, v);
        }
        Ok(PreparedSeries {
            key: tags,
            wal: wal.into_boxed_slice(),
            cached: std::sync::atomic::AtomicU64::new(u64::MAX),
            wal_ref: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> &SeriesKey {
        &self.key
    }

    /// The series id in `registry` (of the table numbered `table_id`), registering it if new.
    pub(crate) fn id_in(&self, table_id: u32, registry: &mut SeriesRegistry) -> u32 {
        use std::sync::atomic::Ordering::Relaxed;
        let cached = self.cached.load(Relaxed);
        if cached >> 32 == u64::from(table_id) {
            return cached as u32;
        }
        let (id, _) = registry.get_or_insert(&self.key);
        self.cached
            .store(u64::from(table_id) << 32 | u64::from(id), Relaxed);
        id
    }
}

/// The name of the time column every table has.
pub const TIME_COLUMN: &str = "time";

/// The columns of a table: tags and typed fields, each in order of first appearance
/// (their ids); SQL sees them sorted by name.
#[derive(Debug, Clone, Default)]
pub struct TableSchema {
    pub tags: Vec<String>,
    pub fields: Vec<(String, FieldType)>,
    field_ids: HashMap<String, usize>,
}

/// Why a point does not fit a table's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("field '{name}' is type {got}, but the column already has type {have}")]
    FieldTypeConflict {
        name: String,
        got: FieldType,
        have: FieldType,
    },
    #[error("'{0}' is a tag of this table and cannot be written as a field")]
    FieldIsTag(String),
    #[error("'{0}' is a field of this table and cannot be written as a tag")]
    TagIsField(String),
    #[error("'time' is reserved for the timestamp and cannot be a tag or field name")]
    ReservedName,
    #[error("the same key '{0}' is used for a tag and a field")]
    TagAndField(String),
    #[error("tag keys and values cannot contain NUL characters")]
    NulInTag,
    #[error(
        "{what} of {len} bytes is too long: names are at most {MAX_NAME_BYTES} bytes once \
         encoded as a file name (bytes other than letters, digits, '_' and '-' count three)"
    )]
    NameTooLong { what: &'static str, len: usize },
    #[error("a point has {n} {what}: at most {max} are allowed")]
    TooMany {
        what: &'static str,
        n: usize,
        max: usize,
    },
    #[error(
        "table '{table}' would have more than {max} columns (tags and fields): \
         max_columns_per_table limit exceeded"
    )]
    TooManyColumns { table: String, max: usize },
    #[error("{scope} would have more than {max} series: max_series_per_{what} limit exceeded")]
    SeriesLimit {
        scope: String,
        what: &'static str,
        max: usize,
    },
}

/// What a point may add to a table (see [`super::StorageConfig`]; 0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct PointLimits {
    pub columns: usize,
    pub tags: usize,
    pub fields: usize,
}

impl PointLimits {
    pub const NONE: PointLimits = PointLimits {
        columns: 0,
        tags: 0,
        fields: 0,
    };
}

/// The longest database, table, tag key or field name: its file-name encoding (see
/// [`super::encode_name`]) must fit the 255 bytes file systems allow for a name.
pub const MAX_NAME_BYTES: usize = 255;

/// Refuses a name whose file-name encoding would pass [`MAX_NAME_BYTES`].
pub fn check_name(what: &'static str, name: &str) -> Result<(), SchemaError> {
    if super::encoded_name_len(name) > MAX_NAME_BYTES {
        return Err(SchemaError::NameTooLong {
            what,
            len: name.len(),
        });
    }
    Ok(())
}

impl TableSchema {
    pub fn field_id(&self, name: &str) -> Option<usize> {
        self.field_ids.get(name).copied()
    }

    pub fn field_type(&self, name: &str) -> Option<FieldType> {
        self.field_id(name).map(|i| self.fields[i].1)
    }

    pub fn has_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t == name)
    }

    /// Checks that `point` fits without changing anything.
    pub fn check(&self, point: &Point, limits: PointLimits) -> Result<(), SchemaError> {
        check_name("measurement", &point.table)?;
        for (what, n, max) in [
            ("tags", point.tags.len(), limits.tags),
            ("fields", point.fields.len(), limits.fields),
        ] {
            if max > 0 && n > max {
                return Err(SchemaError::TooMany { what, n, max });
            }
        }
        if limits.columns > 0 {
            let new = point.tags.iter().filter(|(k, _)| !self.has_tag(k)).count()
                + point
                    .fields
                    .iter()
                    .filter(|(f, _)| self.field_id(f).is_none())
                    .count();
            self.check_columns(&point.table, new, limits.columns)?;
        }
        for (k, v) in &point.tags {
            if k == TIME_COLUMN {
                return Err(SchemaError::ReservedName);
            }
            if k.contains('\0') || v.contains('\0') {
                return Err(SchemaError::NulInTag);
            }
            self.check_tag(k)?;
            if point.fields.iter().any(|(f, _)| f == k) {
                return Err(SchemaError::TagAndField(k.clone()));
            }
        }
        for (name, value) in &point.fields {
            self.check_field(name, value.field_type())?;
        }
        Ok(())
    }

    /// Whether `new` more columns fit under `max` (0: no limit).
    pub fn check_columns(&self, table: &str, new: usize, max: usize) -> Result<(), SchemaError> {
        if max > 0 && new > 0 && self.tags.len() + self.fields.len() + new > max {
            return Err(SchemaError::TooManyColumns {
                table: table.to_string(),
                max,
            });
        }
        Ok(())
    }

    /// Whether `key` can be a tag: not `time`, not one of the fields.
    pub fn check_tag(&self, key: &str) -> Result<(), SchemaError> {
        if key == TIME_COLUMN {
            return Err(SchemaError::ReservedName);
        }
        check_name("tag key", key)?;
        if self.field_ids.contains_key(key) {
            return Err(SchemaError::TagIsField(key.to_string()));
        }
        Ok(())
    }

    /// Whether `name` can be a field of type `got`: not `time`, not a tag, and the same
    /// type as the column if it exists.
    pub fn check_field(&self, name: &str, got: FieldType) -> Result<(), SchemaError> {
        if name == TIME_COLUMN {
            return Err(SchemaError::ReservedName);
        }
        check_name("field", name)?;
        match self.field_type(name) {
            Some(have) if have != got => Err(SchemaError::FieldTypeConflict {
                name: name.to_string(),
                got,
                have,
            }),
            None if self.has_tag(name) => Err(SchemaError::FieldIsTag(name.to_string())),
            _ => Ok(()),
        }
    }

    /// Adds the columns of `point` that are new. Call after [`TableSchema::check`].
    pub fn extend(&mut self, point: &Point) {
        for (k, _) in &point.tags {
            if !self.has_tag(k) {
                self.tags.push(k.clone());
            }
        }
        for (name, value) in &point.fields {
            self.add_field(name, value.field_type());
        }
    }

    pub(crate) fn add_field(&mut self, name: &str, ty: FieldType) -> usize {
        if let Some(id) = self.field_id(name) {
            return id;
        }
        self.fields.push((name.to_string(), ty));
        self.field_ids
            .insert(name.to_string(), self.fields.len() - 1);
        self.fields.len() - 1
    }

    pub(crate) fn add_tag(&mut self, name: &str) {
        if !self.has_tag(name) {
            self.tags.push(name.to_string());
        }
    }
}

/// A series key packed into one allocation, `k1 NUL v1 NUL k2 NUL v2` (tags sorted by
/// key), so a registered series costs one small string instead of one per tag key and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackedKey(Box<str>);

impl PackedKey {
    pub fn new(key: &SeriesKey) -> PackedKey {
        let mut s = String::with_capacity(key.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (i, (k, v)) in key.iter().enumerate() {
            if i > 0 {
                s.push('\0');
            }
            s.push_str(k);
            s.push('\0');
            s.push_str(v);
        }
        PackedKey(s.into_boxed_str())
    }

    /// The (tag, value) pairs, sorted by tag.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = (!self.0.is_empty())
            .then(|| self.0.split('\0'))
            .into_iter()
            .flatten();
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// The value of one tag.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == tag).map(|(_, v)| v)
    }

    pub fn to_key(&self) -> SeriesKey {
        self.pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(&self, key: &SeriesKey) -> bool {
        let mut it = self.pairs();
        key.iter()
            .all(|(k, v)| it.next() == Some((k.as_str(), v.as_str())))
            && it.next().is_none()
    }
}

fn key_hash(key: &SeriesKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in key {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Series key ↔ series id for one table.
#[derive(Debug, Default)]
pub struct SeriesRegistry {
    keys: Vec<Arc<PackedKey>>,
    /// Hash of the key → id; keys are stored once, in `keys`.
    ids: HashMap<u64, u32>,
    /// Further ids whose keys share a hash with the one in `ids`.
    collisions: HashMap<u64, Vec<u32>>,
    /// tag=value → series ids.
    pub index: TagIndex,
}

impl SeriesRegistry {
    /// The id of `key` if it is registered.
    pub fn get(&self, key: &SeriesKey) -> Option<u32> {
        self.lookup(key_hash(key), key)
    }

    fn lookup(&self, h: u64, key: &SeriesKey) -> Option<u32> {
        let &id = self.ids.get(&h)?;
        if self.keys[id as usize].matches(key) {
            return Some(id);
        }
        self.collisions
            .get(&h)
            .and_then(|ids| ids.iter().find(|id| self.keys[**id as usize].matches(key)))
            .copied()
    }

    /// The id of `key`, registering (and indexing) it if new; the flag says it was new.
    pub fn get_or_insert(&mut self, key: &SeriesKey) -> (u32, bool) {
        let h = key_hash(key);
        if let Some(id) = self.lookup(h, key) {
            return (id, false);
        }
        let id = self.keys.len() as u32;
        self.keys.push(Arc::new(PackedKey::new(key)));
        match self.ids.entry(h) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(h).or_default().push(id)
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
        }
        self.index.insert(id, key);
        (id, true)
    }

    pub fn key(&self, id: u32) -> &PackedKey {
        &self.keys[id as usize]
    }

    pub fn key_arc(&self, id: u32) -> Arc<PackedKey> {
        self.keys[id as usize].clone()
    }

    /// All keys, indexed by series id.
    pub fn keys(&self) -> Vec<Arc<PackedKey>> {
        self.keys.clone()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_and_registry() {
        let k = |pairs: &[(&str, &str)]| -> SeriesKey {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let a = k(&[("dc", "eu"), ("host", "a b,c")]);
        let p = PackedKey::new(&a);
        assert_eq!(p.to_key(), a);
        assert_eq!(p.get("host"), Some("a b,c"));
        assert_eq!(p.get("nope"), None);
        assert!(PackedKey::new(&Vec::new()).pairs().next().is_none());
        let mut r = SeriesRegistry::default();
        assert_eq!(r.get_or_insert(&a), (0, true));
        assert_eq!(r.get_or_insert(&Vec::new()), (1, true));
        assert_eq!(r.get_or_insert(&a), (0, false));
        assert_eq!(r.get_or_insert(&k(&[("dc", "eu")])), (2, true));
        assert_eq!(r.key(0).to_key(), a);
    }
}
