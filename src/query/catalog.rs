//! DataFusion catalog and schema providers over the storage engine: a database is a
//! catalog whose schema `public` lists the database's tables as they are now.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result;

use super::information_schema::InformationSchema;
use super::table::SundialTable;
use crate::storage::{Database, Engine};

/// A database as a DataFusion catalog.
#[derive(Debug)]
pub struct DatabaseCatalog {
    public: Arc<PublicSchema>,
    /// Schema `system` (alert rules, instances, history), the same in every database.
    alerting: Option<Arc<dyn super::Alerting>>,
    /// Statements running now, for `system.running_queries`.
    activity: Arc<super::activity::Activity>,
    /// Other schemas registered by DataFusion or pg_catalog emulation.
    others: MemorySchemaCatalog,
}

#[derive(Debug, Default)]
struct MemorySchemaCatalog(parking_lot::RwLock<Vec<(String, Arc<dyn SchemaProvider>)>>);

impl DatabaseCatalog {
    pub fn new(
        db: Arc<Database>,
        engine: Arc<Engine>,
        alerting: Option<Arc<dyn super::Alerting>>,
        activity: Arc<super::activity::Activity>,
    ) -> DatabaseCatalog {
        DatabaseCatalog {
            public: Arc::new(PublicSchema { db, engine }),
            alerting,
            activity,
            others: MemorySchemaCatalog::default(),
        }
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![
            "public".to_string(),
            "information_schema".to_string(),
            "system".to_string(),
        ];
        names.extend(self.others.0.read().iter().map(|(n, _)| n.clone()));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == "public" {
            return Some(self.public.clone());
        }
        if name == "information_schema" {
            return Some(Arc::new(InformationSchema {
                db: self.public.db.clone(),
            }));
        }
        if name == "system" {
            return Some(Arc::new(SystemSchema {
                engine: self.public.engine.clone(),
                alerting: self.alerting.clone(),
                activity: self.activity.clone(),
            }));
        }
        self.others
            .0
            .read()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if name == "public" {
            return Err(datafusion::error::DataFusionError::Plan(
                "schema \"public\" holds the database's tables and cannot be replaced".into(),
            ));
        }
        let mut others = self.others.0.write();
        let old = others
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| others.remove(i).1);
        let schema: Arc<dyn SchemaProvider> = if name == "pg_catalog" {
            Arc::new(PgCatalogPatch {
                inner: schema,
                engine: self.public.engine.clone(),
            })
        } else {
            schema
        };
        others.push((name.to_string(), schema));
        Ok(old)
    }
}

/// datafusion-pg-catalog's `pg_catalog`, with the columns it lacks that psql reads:
/// `pg_class.reloptions` (`\d+ table`), always NULL (tables have no storage options); and
/// without the `postgres` row that the emulation adds to `pg_database` (psql's `\l`) when
/// there is no such database.
#[derive(Debug)]
struct PgCatalogPatch {
    inner: Arc<dyn SchemaProvider>,
    engine: Arc<Engine>,
}

#[async_trait]
impl SchemaProvider for PgCatalogPatch {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        match table {
            Some(t) if name == "pg_class" && t.schema().field_with_name("reloptions").is_err() => {
                Ok(Some(with_null_column(t, "pg_class", "reloptions")?))
            }
            Some(t) if name == "pg_database" && self.engine.database("postgres").is_none() => {
                use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
                let plan = LogicalPlanBuilder::scan(
                    name,
                    datafusion::datasource::provider_as_source(t),
                    None,
                )?
                .filter(col("datname").not_eq(lit("postgres")))?
                .build()?;
                Ok(Some(Arc::new(datafusion::catalog::view::ViewTable::new(
                    plan, None,
                ))))
            }
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// `table` as a view with an extra all-NULL `text[]` column.
fn with_null_column(
    table: Arc<dyn TableProvider>,
    name: &str,
    column: &str,
) -> Result<Arc<dyn TableProvider>> {
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
    let columns: Vec<_> = table
        .schema()
        .fields()
        .iter()
        .map(|f| col(datafusion::common::Column::new_unqualified(f.name())))
        .collect();
    let null = ScalarValue::try_from(&DataType::List(Arc::new(Field::new_list_field(
        DataType::Utf8,
        true,
    ))))?;
    let plan = LogicalPlanBuilder::scan(
        name,
        datafusion::datasource::provider_as_source(table),
        None,
    )?
    .project(columns.into_iter().chain([lit(null).alias(column)]))?
    .build()?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
        plan, None,
    )))
}

/// Schema `system`: the storage engine's tables and the alerting subsystem's.
#[derive(Debug)]
struct SystemSchema {
    engine: Arc<Engine>,
    alerting: Option<Arc<dyn super::Alerting>>,
    activity: Arc<super::activity::Activity>,
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = super::system::TABLES
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(a) = &self.alerting {
            names.extend(a.system_table_names());
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = super::system::table(&self.engine, &self.activity, name) {
            return t.map(Some);
        }
        Ok(self.alerting.as_ref().and_then(|a| a.system_table(name)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|n| n == name)
    }
}

/// A snapshot of rows as a view (relkind `v` in `pg_class`), for catalog-like tables
/// (`information_schema`, `system`) that clients must not list as user tables.
pub fn snapshot_view(
    name: &str,
    batch: datafusion::arrow::array::RecordBatch,
) -> Result<Arc<dyn TableProvider>> {
    let table = datafusion::catalog::MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    let plan = datafusion::logical_expr::LogicalPlanBuilder::scan(
        name,
        datafusion::datasource::provider_as_source(Arc::new(table)),
        None,
    )?
    .build()?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
        plan, None,
    )))
}

/// Schema `public`: the tables of one database.
#[derive(Debug)]
pub struct PublicSchema {
    db: Arc<Database>,
    engine: Arc<Engine>,
}

#[async_trait]
impl SchemaProvider for PublicSchema {
    fn table_names(&self) -> Vec<String> {
        self.db.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.db.table(name).map(|t| {
            Arc::new(SundialTable::new(t, self.db.clone(), self.engine.clone()))
                as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.table(name).is_some()
    }
}

/// The catalogs a session sees: its own database in full, and every other database as an
/// empty catalog, so `pg_database` (psql's `\l`) lists them all while `pg_class` and name
/// resolution only reach the connection's own tables.
#[derive(Debug)]
pub struct DatabaseList {
    current: String,
    catalog: Arc<DatabaseCatalog>,
    engine: Arc<Engine>,
}

impl DatabaseList {
    pub fn new(current: &str, catalog: Arc<DatabaseCatalog>, engine: Arc<Engine>) -> DatabaseList {
        DatabaseList {
            current: current.to_string(),
            catalog,
            engine,
        }
    }
}

impl datafusion::catalog::CatalogProviderList for DatabaseList {
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        // Databases come from storage; nothing else is registered.
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        self.engine.database_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == self.current {
            Some(self.catalog.clone())
        } else if self.engine.database(name).is_some() {
            Some(Arc::new(datafusion::catalog::MemoryCatalogProvider::new()))
        } else {
            None
        }
    }
}
