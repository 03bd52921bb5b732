//! `information_schema` in PostgreSQL's shape (DataFusion's own reports Arrow type names
//! such as `Float64` and has no `udt_name`, which Grafana's query builder and ORMs read):
//! `tables`, `columns` and `schemata` of one database, built from the catalog on each query.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result;

use crate::storage::Database;

/// The PostgreSQL `data_type` and `udt_name` of an Arrow type, with numeric precision/scale.
pub fn pg_type_names(t: &DataType) -> (&'static str, &'static str, Option<i32>, Option<i32>) {
    match t {
        DataType::Timestamp(_, Some(_)) => ("timestamp with time zone", "timestamptz", None, None),
        DataType::Timestamp(_, None) => ("timestamp without time zone", "timestamp", None, None),
        DataType::Float64 => ("double precision", "float8", Some(53), None),
        DataType::Float32 => ("real", "float4", Some(24), None),
        DataType::Int64 => ("bigint", "int8", Some(64), Some(0)),
        DataType::Int32 => ("integer", "int4", Some(32), Some(0)),
        DataType::Int16 | DataType::Int8 => ("smallint", "int2", Some(16), Some(0)),
        DataType::UInt64 => ("numeric", "numeric", Some(20), Some(0)),
        DataType::Boolean => ("boolean", "bool", None, None),
        DataType::Date32 | DataType::Date64 => ("date", "date", None, None),
        DataType::Binary | DataType::LargeBinary => ("bytea", "bytea", None, None),
        _ => ("text", "text", None, None),
    }
}

/// Schema `information_schema` of one database.
#[derive(Debug)]
pub struct InformationSchema {
    pub(crate) db: Arc<Database>,
}

const TABLES: &[&str] = &["tables", "columns", "schemata"];

impl InformationSchema {
    fn schemata(&self) -> Result<RecordBatch> {
        let names = ["public", "information_schema", "pg_catalog"];
        let schema = Arc::new(Schema::new(vec![
            Field::new("catalog_name", DataType::Utf8, false),
            Field::new("schema_name", DataType::Utf8, false),
            Field::new("schema_owner", DataType::Utf8, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.db.name.as_str(); names.len()])),
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(StringArray::from(vec!["sundial"; names.len()])),
        ];
        Ok(RecordBatch::try_new(schema, cols)?)
    }

    fn tables(&self) -> Result<RecordBatch> {
        let mut rows: Vec<(String, String, &str)> = self
            .db
            .table_names()
            .into_iter()
            .map(|t| ("public".to_string(), t, "BASE TABLE"))
            .collect();
        rows.extend(
            TABLES
                .iter()
                .map(|t| ("information_schema".to_string(), t.to_string(), "VIEW")),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_catalog", DataType::Utf8, false),
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("table_type", DataType::Utf8, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.db.name.as_str(); rows.len()])),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        ];
        Ok(RecordBatch::try_new(schema, cols)?)
    }

    fn columns(&self) -> Result<RecordBatch> {
        let mut table_name = Vec::new();
        let mut column_name = Vec::new();
        let mut ordinal = Vec::new();
        let mut nullable = Vec::new();
        let mut data_type = Vec::new();
        let mut udt = Vec::new();
        let mut precision = Vec::new();
        let mut scale = Vec::new();
        for t in self.db.table_names() {
            let Some(table) = self.db.table(&t) else {
                continue;
            };
            let (schema, _) = super::table::layout(&table.schema());
            for (i, f) in schema.fields().iter().enumerate() {
                let (dt, u, p, s) = pg_type_names(f.data_type());
                table_name.push(t.clone());
                column_name.push(f.name().clone());
                ordinal.push(i as i32 + 1);
                nullable.push(if f.is_nullable() { "YES" } else { "NO" });
                data_type.push(dt);
                udt.push(u);
                precision.push(p);
                scale.push(s);
            }
        }
        let n = table_name.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_catalog", DataType::Utf8, false),
            Field::new("table_schema", DataType::Utf8, false),
            Field::new("table_name", DataType::Utf8, false),
            Field::new("column_name", DataType::Utf8, false),
            Field::new("ordinal_position", DataType::Int32, false),
            Field::new("column_default", DataType::Utf8, true),
            Field::new("is_nullable", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("character_maximum_length", DataType::Int32, true),
            Field::new("numeric_precision", DataType::Int32, true),
            Field::new("numeric_scale", DataType::Int32, true),
            Field::new("datetime_precision", DataType::Int32, true),
            Field::new("udt_catalog", DataType::Utf8, false),
            Field::new("udt_schema", DataType::Utf8, false),
            Field::new("udt_name", DataType::Utf8, false),
        ]));
        let datetime: Vec<Option<i32>> = data_type
            .iter()
            .map(|d| d.starts_with("timestamp").then_some(6))
            .collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.db.name.as_str(); n])),
            Arc::new(StringArray::from(vec!["public"; n])),
            Arc::new(StringArray::from(table_name)),
            Arc::new(StringArray::from(column_name)),
            Arc::new(Int32Array::from(ordinal)),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(StringArray::from(nullable)),
            Arc::new(StringArray::from(data_type)),
            Arc::new(Int32Array::from(vec![None; n])),
            Arc::new(Int32Array::from(precision)),
            Arc::new(Int32Array::from(scale)),
            Arc::new(Int32Array::from(datetime)),
            Arc::new(StringArray::from(vec![self.db.name.as_str(); n])),
            Arc::new(StringArray::from(vec!["pg_catalog"; n])),
            Arc::new(StringArray::from(udt)),
        ];
        Ok(RecordBatch::try_new(schema, cols)?)
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let batch = match name {
            "tables" => self.tables()?,
            "columns" => self.columns()?,
            "schemata" => self.schemata()?,
            _ => return Ok(None),
        };
        // Views, as in PostgreSQL: relkind 'v', so `\dt` and SQLAlchemy's table list skip them.
        Ok(Some(super::catalog::snapshot_view(name, batch)?))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}
