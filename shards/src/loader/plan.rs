//! The epoch plan: which samples this rank reads, in which order it reads
//! them, and in which order it delivers them — all computed up front from
//! `(seed, epoch, world, rank)` and the manifest, before any byte is read.
//!
//! 1. **Global sequence.** Every manifest row once. `Access::Shards`: the
//!    shards in an order permuted by `(seed, epoch)`, each shard's samples in
//!    file order (so each shard is one sequential read). `Access::Ranges`: a
//!    permutation of all rows (each sample is its own byte-range read).
//!    With shuffling off, manifest order.
//! 2. **Remainder.** `Remainder::Drop` shortens the sequence to a multiple of
//!    the number of consumers (`world × workers`), leaving out its last
//!    `N mod W` entries (different samples each epoch); `Remainder::Pad`
//!    lengthens it by repeating its first entries.
//! 3. **Split.** Consumer `c` gets the `c`-th contiguous block, so a rank
//!    touches few shards and at most two partially.
//! 4. **Reads.** The block is cut into segments: runs of samples that are
//!    adjacent in the same shard, each read as one byte range.
//! 5. **Delivery order.** A shuffle buffer of `S` slots applied to the read
//!    order with a generator seeded by `(seed, epoch, consumer)`. Because the
//!    buffer's choices never depend on the data, the whole delivery order is
//!    known in advance; the pipeline only has to reorder what arrives. No
//!    position is delivered more than `S` places after it is read, which is
//!    what bounds memory.
//!
//! Nothing here depends on thread counts or fetch timing.

use crate::rng::SplitMix64;

/// What to do when the sample count does not divide among the consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remainder {
    /// Leave out the last `N mod W` samples of the epoch's global sequence
    /// (every delivered sample is delivered once; a different few are left
    /// out each epoch).
    #[default]
    Drop,
    /// Repeat the first `W - N mod W` samples of the global sequence so that
    /// every sample is delivered at least once and those few twice.
    Pad,
}

impl std::str::FromStr for Remainder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop" => Ok(Remainder::Drop),
            "pad" => Ok(Remainder::Pad),
            other => Err(format!("remainder policy must be drop or pad, not `{other}`")),
        }
    }
}

/// How samples are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Shards for a dataset, ranges for a manifest opened by itself.
    #[default]
    Auto,
    /// Stream whole shards (shuffle: shard order plus a shuffle buffer).
    Shards,
    /// One byte-range read per sample (shuffle: a full permutation).
    Ranges,
}

impl std::str::FromStr for Access {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Access::Auto),
            "shards" => Ok(Access::Shards),
            "ranges" => Ok(Access::Ranges),
            other => Err(format!("access must be auto, shards or ranges, not `{other}`")),
        }
    }
}

/// Where one sample lives, as the plan needs it.
#[derive(Debug, Clone, Copy)]
pub struct RowLoc {
    pub shard: u32,
    pub sample_offset: u64,
    pub sample_size: u64,
}

/// The inputs of a plan besides the rows.
#[derive(Debug, Clone, Copy)]
pub struct PlanParams {
    pub seed: u64,
    pub epoch: u64,
    /// `world × workers`.
    pub consumers: u64,
    /// `rank × workers + worker`.
    pub consumer: u64,
    pub shuffle: bool,
    pub shuffle_buffer: usize,
    /// Resolved: never `Auto`.
    pub access: Access,
    pub remainder: Remainder,
}

/// A planned sample: its position in this consumer's read order and its
/// manifest row.
#[derive(Debug, Clone, Copy)]
pub struct PlannedSample {
    pub pos: usize,
    pub row: usize,
    pub padded: bool,
}

/// One byte-range read: adjacent samples of one shard.
#[derive(Debug, Clone)]
pub struct Segment {
    pub shard: u32,
    pub start: u64,
    pub end: u64,
    pub samples: Vec<PlannedSample>,
}

/// Everything one consumer does in one epoch.
#[derive(Debug, Clone)]
pub struct Plan {
    pub segments: Vec<Segment>,
    /// Delivery slot → read position.
    pub order: Vec<usize>,
    /// `prefix_max[t]` = the largest read position among `order[..=t]`.
    pub prefix_max: Vec<usize>,
    /// Read position → manifest row.
    pub rows: Vec<usize>,
    /// Read position → whether it is a repetition added by `Remainder::Pad`.
    pub padded: Vec<bool>,
    /// Samples of the global sequence left out by `Remainder::Drop` (all consumers).
    pub dropped: u64,
}

/// A 64-bit mix of several numbers (SplitMix64 finaliser over a running state).
pub fn mix(parts: &[u64]) -> u64 {
    let mut rng = SplitMix64::seeded(0x5EED_C4E5_5000_0001);
    let mut h = 0u64;
    for &p in parts {
        h ^= p;
        h = SplitMix64::seeded(h ^ rng.next_u64()).next_u64();
    }
    h
}

/// The epoch's global sequence of manifest rows (before the remainder policy).
fn global_sequence(rows: &[RowLoc], p: &PlanParams) -> Vec<usize> {
    let mut rng = SplitMix64::seeded(mix(&[p.seed, p.epoch, 0x610b]));
    match p.access {
        Access::Ranges => {
            let mut seq: Vec<usize> = (0..rows.len()).collect();
            if p.shuffle {
                rng.shuffle(&mut seq);
            }
            seq
        }
        Access::Shards | Access::Auto => {
            // Rows grouped by shard in file order; shards in first-appearance
            // order, permuted when shuffling.
            let mut by_shard: Vec<Vec<usize>> = Vec::new();
            let mut shard_slot: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
            for (i, r) in rows.iter().enumerate() {
                let slot = *shard_slot.entry(r.shard).or_insert_with(|| {
                    by_shard.push(Vec::new());
                    by_shard.len() - 1
                });
                by_shard[slot].push(i);
            }
            for group in &mut by_shard {
                group.sort_by_key(|&i| rows[i].sample_offset);
            }
            if p.shuffle {
                rng.shuffle(&mut by_shard);
            }
            by_shard.into_iter().flatten().collect()
        }
    }
}

/// The delivery order of a shuffle buffer of `size` slots over `n` read
/// positions: fill, then for every further input emit a random slot and put
/// the input there, then drain the rest in random order.
pub fn buffer_order(n: usize, size: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if size <= 1 {
        return (0..n).collect();
    }
    let mut buf: Vec<usize> = Vec::with_capacity(size);
    let mut out = Vec::with_capacity(n);
    for pos in 0..n {
        if buf.len() < size {
            buf.push(pos);
            continue;
        }
        let j = rng.below_exact(size as u64) as usize;
        out.push(buf[j]);
        buf[j] = pos;
    }
    rng.shuffle(&mut buf);
    out.extend(buf);
    out
}

impl Plan {
    pub fn new(rows: &[RowLoc], p: &PlanParams) -> Plan {
        let seq = global_sequence(rows, p);
        let n = seq.len() as u64;
        let w = p.consumers.max(1);
        let (per, dropped) = match p.remainder {
            Remainder::Drop => (n / w, n % w),
            Remainder::Pad => (n.div_ceil(w), 0),
        };
        let start = (p.consumer * per) as usize;
        let local: Vec<(usize, bool)> = (start..start + per as usize)
            .map(|i| (seq[i % seq.len().max(1)], i >= seq.len()))
            .take(if seq.is_empty() { 0 } else { per as usize })
            .collect();

        let mut segments: Vec<Segment> = Vec::new();
        for (pos, &(row, padded)) in local.iter().enumerate() {
            let loc = rows[row];
            let sample = PlannedSample { pos, row, padded };
            match segments.last_mut() {
                Some(seg) if seg.shard == loc.shard && seg.end == loc.sample_offset => {
                    seg.end = loc.sample_offset + loc.sample_size;
                    seg.samples.push(sample);
                }
                _ => segments.push(Segment {
                    shard: loc.shard,
                    start: loc.sample_offset,
                    end: loc.sample_offset + loc.sample_size,
                    samples: vec![sample],
                }),
            }
        }

        let buffer = if p.shuffle && p.access == Access::Shards { p.shuffle_buffer } else { 0 };
        let mut rng = SplitMix64::seeded(mix(&[p.seed, p.epoch, p.consumers, p.consumer, 0xb0f]));
        let order = buffer_order(local.len(), buffer, &mut rng);
        let mut prefix_max = Vec::with_capacity(order.len());
        let mut m = 0;
        for &pos in &order {
            m = m.max(pos);
            prefix_max.push(m);
        }
        Plan {
            segments,
            order,
            prefix_max,
            rows: local.iter().map(|&(r, _)| r).collect(),
            padded: local.iter().map(|&(_, p)| p).collect(),
            dropped,
        }
    }

    /// Samples this consumer delivers in the epoch (when none is corrupt).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, per_shard: usize) -> Vec<RowLoc> {
        (0..n)
            .map(|i| RowLoc {
                shard: (i / per_shard) as u32,
                sample_offset: (i % per_shard) as u64 * 100,
                sample_size: 100,
            })
            .collect()
    }

    fn params(access: Access, consumers: u64, consumer: u64, remainder: Remainder) -> PlanParams {
        PlanParams { seed: 7, epoch: 3, consumers, consumer, shuffle: true, shuffle_buffer: 8, access, remainder }
    }

    #[test]
    fn buffer_order_is_a_bounded_permutation() {
        let mut rng = SplitMix64::seeded(1);
        for (n, s) in [(0, 4), (3, 8), (100, 8), (1000, 64)] {
            let order = buffer_order(n, s, &mut rng);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            for (t, &p) in order.iter().enumerate() {
                assert!(p <= t + s, "slot {t} delivers position {p} read too late");
            }
        }
    }

    #[test]
    fn split_covers_every_row_once_and_segments_are_contiguous() {
        let rows = rows(103, 10);
        for access in [Access::Shards, Access::Ranges] {
            for w in [1u64, 2, 3, 4, 7] {
                let mut seen = vec![0u32; rows.len()];
                let mut total = 0;
                for c in 0..w {
                    let plan = Plan::new(&rows, &params(access, w, c, Remainder::Pad));
                    total += plan.len();
                    for seg in &plan.segments {
                        let mut at = seg.start;
                        for s in &seg.samples {
                            assert_eq!(rows[s.row].sample_offset, at);
                            assert_eq!(rows[s.row].shard, seg.shard);
                            at += rows[s.row].sample_size;
                        }
                        assert_eq!(at, seg.end);
                    }
                    for &pos in &plan.order {
                        seen[plan.rows[pos]] += 1;
                    }
                }
                assert_eq!(total as u64, 103u64.div_ceil(w) * w);
                assert!(seen.iter().all(|&c| c >= 1));
                assert_eq!(seen.iter().map(|&c| c as u64).sum::<u64>(), total as u64);
                let mut dropped = vec![0u32; rows.len()];
                for c in 0..w {
                    let plan = Plan::new(&rows, &params(access, w, c, Remainder::Drop));
                    assert_eq!(plan.dropped, 103 % w);
                    for &pos in &plan.order {
                        dropped[plan.rows[pos]] += 1;
                    }
                }
                assert!(dropped.iter().all(|&c| c <= 1));
                assert_eq!(dropped.iter().filter(|&&c| c == 1).count() as u64, 103 - 103 % w);
            }
        }
    }

    #[test]
    fn epochs_differ_and_repeat() {
        let rows = rows(50, 5);
        let a = Plan::new(&rows, &params(Access::Shards, 1, 0, Remainder::Drop));
        let b = Plan::new(&rows, &params(Access::Shards, 1, 0, Remainder::Drop));
        let mut p = params(Access::Shards, 1, 0, Remainder::Drop);
        p.epoch = 4;
        let c = Plan::new(&rows, &p);
        let keys = |pl: &Plan| pl.order.iter().map(|&i| pl.rows[i]).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        assert_ne!(keys(&a), keys(&c));
    }
}
