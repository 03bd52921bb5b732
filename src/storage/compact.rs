//! Compaction: merges segments of one time partition into one sorted segment (tiered: a
//! run of segments of one generation at a time, see [`compact_partition`]),
//! series by series (memory holds one series of each input, plus the compressed output),
//! off the async threads.
//!
//! Crash safety: the output is written completely (tmp + fsync + rename) before anything
//! else changes, and its footer lists the files it replaces. Then the table swaps the inputs
//! for the output in one step under its lock; queries that started earlier keep reading
//! their snapshot, and an input file is deleted when its last reader lets go. A crash after
//! the output exists but before the inputs are gone is repaired on open: the inputs named
//! in `replaces` are deleted, so rows are never duplicated and never lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Result;
use super::buffer::TimeRange;
use super::meta::{ResolvedTombstone, apply_tombstones};
use super::rows::Rows;
use super::schema::FieldType;
use super::segment::{self, NewSegment, Segment, SeriesRows};
use super::table::{Table, partition_dir};

/// Merges a run of at least `min_segments` segments of one generation in a partition
/// (or all of them when a tombstone covers some of its rows, which the rewrite purges).
/// Returns whether a compaction ran.
pub fn compact_partition(
    table: &Table,
    partition: i64,
    min_segments: usize,
    next_seq: &dyn Fn() -> u64,
) -> Result<bool> {
    let all: Vec<Arc<Segment>> = {
        let st = table.state.read();
        if !st.frozen.is_empty() {
            // A frozen buffer not yet written may rank between the inputs; wait for it.
            return Ok(false);
        }
        let mut v: Vec<Arc<Segment>> = st
            .segments
            .iter()
            .filter(|s| s.footer.partition == partition)
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.footer.seq, s.footer.generation));
        v
    };
    let tombstones: Vec<ResolvedTombstone> = {
        let st = table.state.read();
        st.meta
            .tombstones
            .iter()
            .map(|t| t.resolve(&st.registry.index))
            .collect()
    };
    // A partition with one segment is still rewritten when a tombstone covers it.
    let purge = all.iter().any(|s| {
        tombstones.iter().any(|t| {
            t.seq > s.footer.seq && t.min <= s.footer.max_time && s.footer.min_time <= t.max
        })
    });
    let (inputs, seq) = if purge {
        // Everything, ranked above the tombstones it applies, so they are done.
        (all.clone(), next_seq())
    } else {
        // Tiered: the oldest run of at least `min_segments` segments of one generation,
        // adjacent in precedence order. The output takes the run's place (its newest
        // sequence number, the next generation), so nothing ranks between its inputs
        // and every row is rewritten once per generation, not once per compaction.
        let min = min_segments.max(2);
        let Some(run) = all
            .chunk_by(|a, b| a.footer.generation == b.footer.generation)
            .find(|run| run.len() >= min)
        else {
            return Ok(false);
        };
        let seq = run.iter().map(|s| s.footer.seq).max().unwrap_or_default();
        (run.to_vec(), seq)
    };
    drop(all);
    if inputs.is_empty() {
        return Ok(false);
    }
    let generation = inputs
        .iter()
        .map(|s| s.footer.generation)
        .max()
        .unwrap_or_default()
        + 1;
    // Union of the inputs' fields, in first-seen order.
    let mut fields: Vec<(String, FieldType)> = Vec::new();
    for s in &inputs {
        for f in &s.footer.fields {
            if !fields.contains(f) {
                fields.push(f.clone());
            }
        }
    }
    let types: Vec<FieldType> = fields.iter().map(|(_, t)| *t).collect();
    // Table series id → (input index, series index in that input).
    let mut by_series: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    for (n, s) in inputs.iter().enumerate() {
        for (i, sid) in s.series_ids.iter().enumerate() {
            by_series.entry(*sid).or_default().push((n, i));
        }
    }
    let files: Vec<std::fs::File> = inputs.iter().map(|s| s.file()).collect::<Result<_>>()?;
    let keys = table.state.read().registry.keys();
    let mut series = Vec::with_capacity(by_series.len());
    let mut ids = Vec::with_capacity(by_series.len());
    for (sid, parts) in by_series {
        let mut layers = Vec::with_capacity(parts.len());
        for (n, i) in parts {
            let mut rows = Rows::new(&types);
            inputs[n].read_series(&files[n], i, TimeRange::ALL, &fields, &mut rows)?;
            layers.push(apply_tombstones(rows, inputs[n].footer.seq, &tombstones));
        }
        let merged = Rows::merge(layers, &types);
        if merged.is_empty() {
            continue;
        }
        ids.push(sid);
        series.push(SeriesRows {
            key: keys[sid as usize].to_key(),
            time: merged.time,
            columns: merged.columns,
        });
    }
    let new = NewSegment {
        dir: &table.dir.join(partition_dir(partition)),
        seq,
        generation,
        partition,
        fields,
        series,
        replaces: inputs.iter().map(|s| s.name()).collect(),
    };
    let output = segment::write(new, &ids)?;
    let mut st = table.state.write();
    st.segments
        .retain(|s| !inputs.iter().any(|i| Arc::ptr_eq(i, s)));
    if let Some(out) = output {
        tracing::info!(table = %table.name, partition, inputs = inputs.len(), rows = out.footer.rows, bytes = out.file_len, "compacted partition");
        st.segments.push(Arc::new(out));
    }
    for i in &inputs {
        i.obsolete.store(true, Ordering::SeqCst);
    }
    // A tombstone may be pruned only once no file it covers can come back: an input that
    // a reader still holds stays on disk (and, when the output is empty, nothing on disk
    // says it was replaced), so it keeps the tombstones above it for a later pass.
    let inputs: Vec<(u64, std::path::PathBuf)> = {
        let named = inputs
            .iter()
            .map(|s| (s.footer.seq, s.path.clone()))
            .collect();
        drop(files);
        drop(inputs);
        named
    };
    let lingering = inputs
        .iter()
        .filter(|(_, p)| p.exists())
        .map(|(seq, _)| *seq);
    // Tombstones older than every remaining segment and buffer have done their work.
    let oldest = st
        .segments
        .iter()
        .map(|s| s.footer.seq)
        .chain(st.frozen.iter().map(|f| f.seq))
        .chain(lingering)
        .min();
    let before = st.meta.tombstones.len();
    let kept: Vec<_> = st
        .meta
        .tombstones
        .iter()
        .filter(|t| oldest.is_some_and(|o| t.seq > o))
        .cloned()
        .collect();
    if kept.len() != before {
        // The deletions must be durable before the tombstones that stood in for them go.
        super::fsync_dir(&table.dir.join(partition_dir(partition)))?;
        let mut new = st.meta.clone();
        new.tombstones = kept;
        super::meta::write(&table.dir, &new)?;
        st.meta = new;
    }
    Ok(true)
}

/// Compacts every partition of `table` that has at least `min_segments` segments.
pub fn compact_table(
    table: &Table,
    min_segments: usize,
    next_seq: &dyn Fn() -> u64,
) -> Result<usize> {
    let partitions: std::collections::BTreeSet<i64> = table
        .state
        .read()
        .segments
        .iter()
        .map(|s| s.footer.partition)
        .collect();
    let mut n = 0;
    for p in partitions {
        if compact_partition(table, p, min_segments, next_seq)? {
            n += 1;
        }
    }
    Ok(n)
}
