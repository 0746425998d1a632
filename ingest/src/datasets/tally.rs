//! The accounting of a CSV-driven import (CheXpert's and the public sets'):
//! every input row or file ended as a sample or a [`Rejected`] row; counted
//! per split (rows, samples, rejections, distinct patients) and per reason,
//! and the rejections as `rejected.parquet`'s columns.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::chexpert::Rejected;
use crate::error::{IngestError, Result};
use crate::frontend::Rejections;

/// Per-split counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitCounts {
    /// Input rows (or files) of the split.
    pub rows: u64,
    pub samples: u64,
    pub rejected: u64,
    /// Distinct patient ids among the samples.
    pub patients: u64,
}

/// What the inputs of a run became.
#[derive(Debug, Default)]
pub struct Tally<'a> {
    pub rows: u64,
    pub samples: u64,
    /// Counts per reason code.
    pub rejected: BTreeMap<String, u64>,
    pub splits: BTreeMap<String, SplitCounts>,
    pub rejections: Vec<&'a Rejected>,
}

/// Counts `outcomes` (one per input, in input order), with each input's
/// split and, for a sample, its patient. An input without an outcome is an
/// accounting error.
pub fn tally<'a>(
    outcomes: &'a [Option<Result<(), Rejected>>],
    split: impl Fn(usize) -> String,
    patient: impl Fn(usize) -> Option<&'a str>,
) -> Result<Tally<'a>> {
    let mut t = Tally::default();
    let mut patients: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        let s = split(i);
        let c = t.splits.entry(s.clone()).or_default();
        c.rows += 1;
        t.rows += 1;
        match o {
            Some(Ok(())) => {
                c.samples += 1;
                t.samples += 1;
                if let Some(p) = patient(i) {
                    patients.entry(s).or_default().insert(p);
                }
            }
            Some(Err(rej)) => {
                c.rejected += 1;
                *t.rejected.entry(rej.code.clone()).or_default() += 1;
                t.rejections.push(rej);
            }
            None => return Err(IngestError::Accounting(format!("input {i} was never processed"))),
        }
    }
    for (s, p) in patients {
        t.splits.entry(s).or_default().patients = p.len() as u64;
    }
    Ok(t)
}

impl Tally<'_> {
    /// The rejections located by `source_path`, for [`crate::frontend::account`].
    pub fn rejections(&self) -> Rejections<'_> {
        Rejections {
            locator: (
                "source_path",
                Arc::new(arrow_array::StringArray::from_iter_values(self.rejections.iter().map(|r| r.source.as_str()))),
            ),
            codes: self.rejections.iter().map(|r| r.code.as_str()).collect(),
            messages: self.rejections.iter().map(|r| r.message.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_is_counted_once() {
        let rej = Rejected { source: "x".into(), code: "bad_csv_row".into(), message: "m".into() };
        let outcomes = vec![Some(Ok(())), Some(Err(rej)), Some(Ok(())), Some(Ok(()))];
        let patients = ["p1", "p1", "p1", "p2"];
        let t =
            tally(&outcomes, |i| if i < 2 { "train".into() } else { "test".into() }, |i| Some(patients[i])).unwrap();
        assert_eq!((t.rows, t.samples, t.rejections.len()), (4, 3, 1));
        assert_eq!(t.rejected["bad_csv_row"], 1);
        let train = &t.splits["train"];
        assert_eq!((train.rows, train.samples, train.rejected, train.patients), (2, 1, 1, 1));
        assert_eq!(t.splits["test"].patients, 2);
        assert!(tally(&[None], |_| String::new(), |_| None).is_err());
    }
}
