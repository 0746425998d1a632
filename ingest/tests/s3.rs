//! `--out s3://…` against a real S3-compatible server on loopback (`s3s-fs`,
//! built by `scripts/setup.sh`): the dataset arrives complete (multipart for
//! large shards), nothing of `private/` is in the bucket (listed object by
//! object), a re-run skips what is already there; with `--private-dir` the
//! private files go there and not into the work directory.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Synth};

const AK: &str = "ingest-test-key";
const SK: &str = "ingest-test-secret";

fn s3s_fs() -> PathBuf {
    if let Ok(p) = std::env::var("CHESS_S3S_FS") {
        return PathBuf::from(p);
    }
    let p = common::venv().parent().unwrap().join("s3s/bin/s3s-fs");
    assert!(p.exists(), "s3s-fs not found at {}: run scripts/setup.sh (it builds s3s-fs)", p.display());
    p
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every object of the served bucket (s3s-fs keeps one file per object;
/// its own upload bookkeeping, dot-files, is not an object).
fn bucket_objects(bucket: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(bucket)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(bucket).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.split('/').any(|c| c.starts_with('.')))
        .collect();
    out.sort();
    out
}

#[test]
fn out_s3_uploads_a_complete_dataset_and_keeps_secrets_local() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..30 {
        let mut s = Synth::new(&format!("1.2.826.9.{i}"), 300 + i);
        s.rows = 400;
        s.columns = 380;
        s.write(&inp.join(format!("{i:02}.dcm")));
    }
    let served = tmp.path().join("s3");
    std::fs::create_dir_all(served.join("bkt")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", AK, "--secret-key", SK])
            .arg(&served)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let work = tmp.path().join("work");
    let run_to = |url: &str, work: &std::path::Path, private: Option<&std::path::Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chess-ingest"));
        c.arg(&inp).args(["--out", url, "--shard-samples", "25", "--burned-in", "keep"]).arg("--work-dir").arg(work);
        if let Some(p) = private {
            c.arg("--private-dir").arg(p);
        }
        c.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            // Small parts so that the first shard (about 13 MB) goes up in parts.
            .env("CHESS_UPLOAD_PART_BYTES", (5 << 20).to_string())
            .output()
            .unwrap()
    };
    let run = || run_to("s3://bkt/ds", &work, None);
    let o = run();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Uploaded to s3://bkt/ds: 4 objects"), "{stdout}");
    let remote = served.join("bkt/ds");
    let shard0 = std::fs::metadata(work.join("shards/shard-000000.tar")).unwrap().len();
    assert!(shard0 > 2 * (5 << 20), "the first shard must be big enough to need parts: {shard0}");
    for rel in ["dataset.json", "manifest.parquet", "shards/shard-000000.tar", "shards/shard-000001.tar"] {
        assert_eq!(std::fs::read(remote.join(rel)).unwrap(), std::fs::read(work.join(rel)).unwrap(), "{rel}");
    }
    // The bucket, listed: the dataset's four objects and nothing else (no
    // key, journal, run file or reject list), while private/ stays local.
    assert_eq!(
        bucket_objects(&served.join("bkt")),
        ["ds/dataset.json", "ds/manifest.parquet", "ds/shards/shard-000000.tar", "ds/shards/shard-000001.tar"]
    );
    for rel in ["private/key", "private/journal.jsonl", "private/run.json", "private/rejected.parquet"] {
        assert!(work.join(rel).is_file(), "{rel} stays in the local work directory");
    }
    let ds = chess_shards::Dataset::open(&remote).unwrap();
    assert_eq!(ds.manifest.len(), 30);
    assert!(chess_shards::verify::verify(&ds, &|_| {}).unwrap().ok());
    // Re-running finds everything done and only rewrites dataset.json.
    let o = run();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 objects"), "{}", String::from_utf8_lossy(&o.stdout));

    // With --private-dir the private files go there, not even into the work
    // directory, and the bucket still holds the dataset only.
    let (work2, private) = (tmp.path().join("work2"), tmp.path().join("private-elsewhere"));
    let o = run_to("s3://bkt/ds2", &work2, Some(&private));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.lines().last().is_some_and(|l| l.contains("private-elsewhere")), "printed at the end: {stdout}");
    let objects = bucket_objects(&served.join("bkt"));
    let ds2: Vec<&String> = objects.iter().filter(|o| o.starts_with("ds2/")).collect();
    assert_eq!(
        ds2,
        ["ds2/dataset.json", "ds2/manifest.parquet", "ds2/shards/shard-000000.tar", "ds2/shards/shard-000001.tar"]
    );
    assert!(!work2.join("private").exists());
    for rel in ["key", "journal.jsonl", "run.json", "rejected.parquet"] {
        assert!(private.join(rel).is_file(), "{rel} is in --private-dir");
    }
}
