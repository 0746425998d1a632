//! Benchmark of resuming a `chess-ingest` run from a large journal
//! (`scripts/bench/journal.sh` runs it under `/usr/bin/time -v`).
//!
//! `journal_resume write N DIR` writes `DIR/journal.jsonl` with N lines as a
//! DICOM import writes them: 98 % samples (source path of an archive-like
//! depth, 32-hex key, 64-hex pixel hash, label row), 1.5 % rejects with a
//! message, 0.5 % duplicates. `journal_resume resume N DIR` then does what a
//! resumed run does before its first new file: reads the journal and
//! rebuilds the de-duplication state against the N keys of the complete
//! shards (as `DatasetWriter::resume` returns them). It prints the entries,
//! the state's counts and the seconds each step took.

use std::path::Path;
use std::time::Instant;

use chess_ingest::journal::{Entry, Journal};
use chess_shards::WrittenKeys;

/// The i-th source path: archive-like depth, about 90 characters.
fn source(i: u64) -> String {
    format!(
        "export/{}/{:02}/{:02}/1.2.840.113619.2.55.3.{}.{}/series{}/IM{:06}.dcm",
        2010 + i % 12,
        1 + i % 12,
        1 + i % 28,
        604_688_119 + i / 97,
        969 + i % 7,
        i % 3,
        i
    )
}

/// A 32-hex key and a 64-hex hash, deterministic in `i`.
fn hex(i: u64, domain: &str, len: usize) -> String {
    let h = blake3::hash(format!("{domain}{i}").as_bytes()).to_hex();
    h[..len].to_string()
}

fn entry(i: u64) -> Entry {
    match i % 200 {
        0..=2 => Entry::Reject {
            s: source(i),
            r: "not_dicom".into(),
            m: "no DICM preamble and no known data set start".into(),
            n: Vec::new(),
        },
        3 => Entry::Duplicate {
            s: source(i),
            r: "duplicate_pixels".into(),
            k: hex(i - 3, "key", 32),
            m: format!("same pixels as {}", source(i - 3)),
            n: Vec::new(),
        },
        // One file in 50 read leniently, as an old archive's would be.
        _ => Entry::Sample {
            s: source(i),
            k: hex(i, "key", 32),
            h: hex(i, "hash", 64),
            l: Some(i as usize),
            b: false,
            n: if i % 50 == 7 { vec!["no_file_meta".into()] } else { Vec::new() },
        },
    }
}

/// Keys of the samples among the first `n` entries (the complete shards' keys).
fn complete_keys(n: u64) -> WrittenKeys {
    let keys: Vec<String> = (0..n).filter(|i| !matches!(i % 200, 0..=3)).map(|i| hex(i, "key", 32)).collect();
    keys.iter().map(String::as_str).collect()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::other("usage: journal_resume write|resume N DIR");
    let (mode, n, dir) = match args.as_slice() {
        [_, mode, n, dir] => (mode.as_str(), n.parse::<u64>().map_err(|_| usage())?, Path::new(dir)),
        _ => return Err(usage()),
    };
    let path = dir.join("journal.jsonl");
    match mode {
        "write" => {
            std::fs::create_dir_all(dir)?;
            let _ = std::fs::remove_file(&path);
            let t = Instant::now();
            let (mut journal, _) = Journal::open(&path)?;
            for i in 0..n {
                journal.append(&entry(i))?;
            }
            journal.sync()?;
            let bytes = std::fs::metadata(&path)?.len();
            println!(
                "wrote {n} lines, {bytes} bytes ({:.1} bytes/line) in {:.1} s",
                bytes as f64 / n as f64,
                t.elapsed().as_secs_f64()
            );
        }
        "resume" => {
            let t = Instant::now();
            let complete = complete_keys(n);
            let keys_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let restored = chess_ingest::run::restore_from_journal(&path, complete)?;
            println!(
                "complete keys {keys_s:.1} s; journal read + state rebuilt {:.1} s: {} entries, {} done ({} samples, {} rejected)",
                t.elapsed().as_secs_f64(),
                restored.entries,
                restored.samples + restored.rejected,
                restored.samples,
                restored.rejected
            );
        }
        _ => return Err(usage()),
    }
    Ok(())
}
