//! The physical scan of a Sundial table: a storage [`Scan`] snapshot, its series split into
//! partitions of about equal rows that DataFusion runs in parallel, each read on a
//! blocking thread and streamed as Arrow batches built from the decoded vectors without
//! another copy (a batch of one series moves its vectors into Arrow buffers).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, TimestampNanosecondArray, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

use super::table::ColumnKind;
use crate::storage::Engine;
use crate::storage::rows::{Dense, DenseValues};
use crate::storage::scan::{Files, Scan, SeriesChunk};

/// Rows per batch (a series with more is one batch of its own).
const BATCH_ROWS: usize = 8192;
/// Partitions of at most this many rows are read on the calling thread.
const INLINE_ROWS: u64 = 32_768;

/// Scans one table (see the module docs).
pub struct ScanExec {
    scan: Arc<Scan>,
    engine: Arc<Engine>,
    table: String,
    kinds: Arc<Vec<ColumnKind>>,
    schema: SchemaRef,
    /// Per partition, the indices into `scan.series` it reads.
    parts: Vec<std::ops::Range<usize>>,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for ScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanExec({})", self.table)
    }
}

impl ScanExec {
    pub(crate) fn new(
        scan: Scan,
        engine: Arc<Engine>,
        table: String,
        kinds: Vec<ColumnKind>,
        schema: SchemaRef,
        partitions: usize,
    ) -> ScanExec {
        // Contiguous runs of series with about the same number of rows each.
        let total: u64 = scan.estimate().max(1);
        let n = partitions.clamp(1, scan.series.len().max(1));
        let mut parts = Vec::with_capacity(n);
        let (mut start, mut acc) = (0, 0u64);
        for (i, s) in scan.series.iter().enumerate() {
            acc += s.rows;
            if parts.len() + 1 < n && acc * n as u64 >= total * (parts.len() as u64 + 1) {
                parts.push(start..i + 1);
                start = i + 1;
            }
        }
        parts.push(start..scan.series.len());
        while parts.len() < n {
            parts.push(scan.series.len()..scan.series.len());
        }
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(parts.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        ScanExec {
            scan: Arc::new(scan),
            engine,
            table,
            kinds: Arc::new(kinds),
            schema,
            parts,
            props,
        }
    }
}

impl DisplayAs for ScanExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SundialScan: table={}, series={}, partitions={}{}",
            self.table,
            self.scan.series.len(),
            self.parts.len(),
            if self.scan.latest() {
                ", newest row per series"
            } else {
                ""
            }
        )
    }
}

impl ExecutionPlan for ScanExec {
    fn name(&self) -> &str {
        "SundialScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let range = self.parts.get(partition).cloned().unwrap_or(0..0);
        let (scan, engine, kinds, schema) = (
            self.scan.clone(),
            self.engine.clone(),
            self.kinds.clone(),
            self.schema.clone(),
        );
        let reservation =
            MemoryConsumer::new(format!("scan of {}", self.table)).register(context.memory_pool());
        let table = self.table.clone();
        let estimate: u64 = scan.series[range.clone()].iter().map(|s| s.rows).sum();
        let read = move |emit: &mut dyn FnMut(Result<RecordBatch>) -> bool| {
            let mut files = Files::default();
            let mut pending: Vec<SeriesChunk> = Vec::new();
            let mut rows = 0;
            let mut send = |pending: &mut Vec<SeriesChunk>| {
                let batch =
                    to_batch(std::mem::take(pending), &scan, &kinds, &schema).and_then(|b| {
                        reservation
                            .try_resize(b.get_array_memory_size())
                            .map_err(|e| super::table::scan_too_big(&table, e))?;
                        Ok(b)
                    });
                emit(batch)
            };
            for plan in &scan.series[range] {
                match scan.read(plan, &mut files, engine.stats()) {
                    Ok(Some(chunk)) => {
                        rows += chunk.time.len();
                        pending.push(chunk);
                        if rows >= BATCH_ROWS {
                            rows = 0;
                            if !send(&mut pending) {
                                return;
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = emit(Err(DataFusionError::External(Box::new(e))));
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                send(&mut pending);
            }
        };
        // A small read costs less than handing it to another thread and back: read it
        // here (point queries, newest rows).
        if estimate <= INLINE_ROWS {
            let mut batches = Vec::new();
            read(&mut |b| {
                batches.push(b);
                true
            });
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::iter(batches),
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        tokio::task::spawn_blocking(move || read(&mut |b| tx.blocking_send(b).is_ok()));
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// Concatenates the columns of `chunks` (moves them when there is one).
fn concat(chunks: &mut [SeriesChunk], i: usize) -> Dense {
    if chunks.len() == 1 {
        return std::mem::replace(
            &mut chunks[0].columns[i],
            Dense::empty(crate::storage::FieldType::Float),
        );
    }
    let mut out: Option<Dense> = None;
    for c in chunks.iter_mut() {
        let d = std::mem::replace(
            &mut c.columns[i],
            Dense::empty(crate::storage::FieldType::Float),
        );
        match &mut out {
            None => out = Some(d),
            Some(o) => o.append(d),
        }
    }
    out.expect("at least one chunk")
}

fn to_batch(
    mut chunks: Vec<SeriesChunk>,
    scan: &Scan,
    kinds: &[ColumnKind],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let lens: Vec<usize> = chunks.iter().map(|c| c.time.len()).collect();
    let rows: usize = lens.iter().sum();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(kinds.len());
    let mut field = 0;
    for kind in kinds {
        let array: ArrayRef = match kind {
            ColumnKind::Time => {
                let time: Vec<i64> = if chunks.len() == 1 {
                    std::mem::take(&mut chunks[0].time)
                } else {
                    chunks.iter().flat_map(|c| c.time.iter().copied()).collect()
                };
                Arc::new(
                    TimestampNanosecondArray::new(ScalarBuffer::from(time), None)
                        .with_timezone("UTC"),
                )
            }
            ColumnKind::Tag(tag) => {
                let mut b = StringBuilder::with_capacity(rows, rows * 8);
                for (c, n) in chunks.iter().zip(&lens) {
                    let value = scan.keys.get(c.sid as usize).and_then(|k| k.get(tag));
                    for _ in 0..*n {
                        b.append_option(value);
                    }
                }
                Arc::new(b.finish())
            }
            ColumnKind::Field(..) => {
                let d = concat(&mut chunks, field);
                field += 1;
                let nulls = d.valid.map(NullBuffer::from);
                match d.values {
                    DenseValues::Float(v) => {
                        Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls))
                    }
                    DenseValues::Integer(v) => {
                        Arc::new(Int64Array::new(ScalarBuffer::from(v), nulls))
                    }
                    DenseValues::UInteger(v) => {
                        Arc::new(UInt64Array::new(ScalarBuffer::from(v), nulls))
                    }
                    DenseValues::String(v) => Arc::new(
                        v.iter()
                            .enumerate()
                            .map(|(i, s)| {
                                nulls
                                    .as_ref()
                                    .is_none_or(|n| n.is_valid(i))
                                    .then_some(s.as_str())
                            })
                            .collect::<StringArray>(),
                    ),
                    DenseValues::Boolean(v) => Arc::new(BooleanArray::new(v.into(), nulls)),
                }
            }
        };
        arrays.push(array);
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &opts,
    )?)
}
