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

    /// Approximate heap + inline size, for buffer accounting.
    pub(crate) fn size(&self) -> usize {
        match self {
            Value::String(s) => 24 + s.len(),
            _ => 16,
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
    pub fn check(&self, point: &Point) -> Result<(), SchemaError> {
        for (k, _) in &point.tags {
            if k == TIME_COLUMN {
                return Err(SchemaError::ReservedName);
            }
            if self.field_ids.contains_key(k) {
                return Err(SchemaError::TagIsField(k.clone()));
            }
            if point.fields.iter().any(|(f, _)| f == k) {
                return Err(SchemaError::TagAndField(k.clone()));
            }
        }
        for (name, value) in &point.fields {
            if name == TIME_COLUMN {
                return Err(SchemaError::ReservedName);
            }
            if let Some(have) = self.field_type(name) {
                let got = value.field_type();
                if got != have {
                    return Err(SchemaError::FieldTypeConflict {
                        name: name.clone(),
                        got,
                        have,
                    });
                }
            } else if self.has_tag(name) {
                return Err(SchemaError::FieldIsTag(name.clone()));
            }
        }
        Ok(())
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

/// Series key ↔ series id for one table.
#[derive(Debug, Default)]
pub struct SeriesRegistry {
    keys: Vec<Arc<SeriesKey>>,
    /// Shares the key allocations of `keys`.
    ids: HashMap<Arc<SeriesKey>, u32>,
    /// tag=value → series ids.
    pub index: TagIndex,
}

impl SeriesRegistry {
    /// The id of `key`, registering (and indexing) it if new; the flag says it was new.
    pub fn get_or_insert(&mut self, key: &SeriesKey) -> (u32, bool) {
        if let Some(id) = self.ids.get(key) {
            return (*id, false);
        }
        let id = self.keys.len() as u32;
        let key = Arc::new(key.clone());
        self.keys.push(key.clone());
        self.ids.insert(key.clone(), id);
        self.index.insert(id, &key);
        (id, true)
    }

    pub fn key(&self, id: u32) -> &SeriesKey {
        &self.keys[id as usize]
    }

    pub fn key_arc(&self, id: u32) -> Arc<SeriesKey> {
        self.keys[id as usize].clone()
    }

    /// All keys, indexed by series id.
    pub fn keys(&self) -> Vec<Arc<SeriesKey>> {
        self.keys.clone()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
