//! Partitions of one DICOM import across jobs (`--partition I/N`, Slurm
//! arrays, Kubernetes indexed Jobs): each job takes the top-level files
//! whose path hashes to its index.

use std::path::Path;

use crate::error::{IngestError, Result};

/// Stable partition of a top-level path.
pub fn partition_of(path: &Path, count: u32) -> u32 {
    let h = blake3::hash(path.as_os_str().as_encoded_bytes());
    (u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % count as u64) as u32
}

/// Reads `--partition` from the environment when not given: Slurm arrays
/// (`SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`, minus
/// `SLURM_ARRAY_TASK_MIN` when set) or Kubernetes indexed Jobs
/// (`JOB_COMPLETION_INDEX` with the count in `JOB_COMPLETIONS`).
pub fn partition_from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<(u32, u32)>> {
    let num = |name: &str| -> Result<Option<u32>> {
        match get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| IngestError::InvalidOption(format!("{name}={v:?} is not a number"))),
        }
    };
    if let (Some(id), Some(count)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        return Ok(Some((id.saturating_sub(min), count)));
    }
    if let Some(idx) = num("JOB_COMPLETION_INDEX")? {
        let count = num("JOB_COMPLETIONS")?.ok_or_else(|| {
            IngestError::InvalidOption(
                "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not (pass --partition I/N)".into(),
            )
        })?;
        return Ok(Some((idx, count)));
    }
    Ok(None)
}

/// Parses `I/N` (0-based index).
pub fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/8"))?;
    let i: u32 = i.trim().parse().map_err(|_| format!("`{s}`: I is not a number"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("`{s}`: need 0 <= I < N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_split_deterministically() {
        let paths: Vec<std::path::PathBuf> =
            (0..1000).map(|i| std::path::PathBuf::from(format!("in/{i}.dcm"))).collect();
        let mut counts = [0; 4];
        for p in &paths {
            let k = partition_of(p, 4);
            assert_eq!(k, partition_of(p, 4));
            counts[k as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200), "{counts:?}");
        assert_eq!(parse_partition("3/8"), Ok((3, 8)));
        assert!(parse_partition("8/8").is_err());
        assert!(parse_partition("x").is_err());
    }

    #[test]
    fn partition_comes_from_slurm_or_kubernetes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(partition_from_env(env(&[])).unwrap(), None);
        assert_eq!(
            partition_from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "8"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ]))
            .unwrap(),
            Some((4, 8))
        );
        assert_eq!(
            partition_from_env(env(&[("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "3")])).unwrap(),
            Some((2, 3))
        );
        assert!(partition_from_env(env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
    }
}
