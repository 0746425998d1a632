//! The streaming loader against a real S3-compatible server on loopback
//! (`s3s-fs`, built by `scripts/setup.sh`), started by each test: same
//! delivery as local disk, subset manifests by byte range, a server killed
//! and restarted mid-epoch, connections cut mid-shard, and retries running
//! out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chess_shards::loader::{Batch, EpochReport, Loader, LoaderOptions, Retry};
use chess_shards::Dataset;

use crate::common;

const AK: &str = "chess-test-key";
const SK: &str = "chess-test-secret";

fn s3s_fs() -> PathBuf {
    let path = match std::env::var("CHESS_S3S_FS") {
        Ok(p) => PathBuf::from(p),
        Err(_) => std::env::var("CHESS_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/chess"))
            .join("s3s/bin/s3s-fs"),
    };
    assert!(
        path.exists(),
        "s3s-fs not found at {}: the S3 loader tests need it; run scripts/setup.sh (it builds s3s-fs 0.14.1), \
         or point CHESS_S3S_FS at an s3s-fs binary",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An s3s-fs process serving `root` (buckets are its subdirectories).
struct Server {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
}

impl Server {
    fn start(root: &Path) -> Server {
        let mut s = Server { child: None, port: free_port(), root: root.to_path_buf() };
        s.restart();
        s
    }

    fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(s3s_fs())
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--access-key", AK, "--secret-key", SK])
                .arg(&self.root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting s3s-fs");
            std::thread::sleep(Duration::from_millis(50));
            // The port may still be held for a moment after a kill: try again.
            if child.try_wait().unwrap().is_some() {
                assert!(Instant::now() < deadline, "s3s-fs keeps exiting on port {}", self.port);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            self.child = Some(child);
            break;
        }
        wait_listening(self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn storage(endpoint: &str) -> Vec<(String, String)> {
    [
        ("endpoint", endpoint),
        ("allow_http", "true"),
        ("access_key_id", AK),
        ("secret_access_key", SK),
        ("region", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Writes a dataset of `n` demo phantoms of `size`² into `<root>/bkt/ds`
/// (what the server serves as `s3://bkt/ds`) and returns that directory.
fn dataset(root: &Path, n: u64, size: u32, per_shard: u64) -> PathBuf {
    let ds = common::demo_dataset(&root.join("bkt").join("ds"), n, size, per_shard, false);
    // Only what a dataset holds (no writer staging leftovers).
    let _ = std::fs::remove_dir_all(ds.join(".staging"));
    ds
}

fn opts(endpoint: &str, batch: usize) -> LoaderOptions {
    LoaderOptions {
        seed: 3,
        batch_size: batch,
        shuffle_buffer: 16,
        storage: storage(endpoint),
        retry: Retry { retries: 8, backoff: Duration::from_millis(50) },
        ..LoaderOptions::default()
    }
}

fn keys(batches: &[Batch]) -> Vec<String> {
    batches.iter().flat_map(|b| b.keys.clone()).collect()
}

fn drain(it: &mut chess_shards::loader::EpochIter) -> (Vec<Batch>, EpochReport) {
    let batches: Vec<Batch> = it.map(|b| b.unwrap()).collect();
    (batches, it.report().cloned().unwrap())
}

fn assert_exactly_once(delivered: &[String], ds: &Path) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in delivered {
        *counts.entry(k).or_default() += 1;
    }
    let all: Vec<String> = Dataset::open(ds).unwrap().manifest.rows().into_iter().map(|r| r.key).collect();
    assert_eq!(counts.len(), all.len(), "every sample delivered");
    assert!(all.iter().all(|k| counts.get(k.as_str()) == Some(&1)), "each exactly once: {counts:?}");
}

#[test]
fn s3_delivers_what_local_disk_delivers_and_serves_subsets_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 40, 32, 6);
    let server = Server::start(dir.path());
    for world in [1u64, 2] {
        for rank in 0..world {
            let o = LoaderOptions { world, rank, ..opts(&server.endpoint(), 4) };
            let (local, _) = drain(&mut Loader::open(ds.to_str().unwrap(), o.clone()).unwrap().epoch(1));
            let remote_loader = Loader::open("s3://bkt/ds", o).unwrap();
            let (remote, report) = drain(&mut remote_loader.epoch(1));
            assert!(report.accounted() && report.skipped == 0, "{report:?}");
            assert_eq!(keys(&remote), keys(&local));
            for (a, b) in remote.iter().zip(&local) {
                assert_eq!(a.pixels, b.pixels);
                assert_eq!(a.labels, b.labels);
            }
        }
    }

    // A subset manifest stored in the bucket, whose recorded dataset root is
    // the dataset's URL: served by byte ranges of just its samples.
    let local = Dataset::open(&ds).unwrap();
    let picked: Vec<String> = local.manifest.rows().iter().step_by(3).map(|r| r.key.clone()).collect();
    let rows = chess_shards::ops::subset(&local, Some(&picked), None).unwrap();
    let subsets = dir.path().join("bkt").join("subsets");
    std::fs::create_dir_all(&subsets).unwrap();
    chess_shards::manifest::write_parquet(
        &subsets.join("third.parquet"),
        &local.manifest.schema,
        &[rows],
        Some("s3://bkt/ds"),
    )
    .unwrap();
    let loader = Loader::open("s3://bkt/subsets/third.parquet", opts(&server.endpoint(), 4)).unwrap();
    assert_eq!(loader.access(), chess_shards::loader::Access::Ranges);
    let (batches, report) = drain(&mut loader.epoch(0));
    let mut got = keys(&batches);
    got.sort();
    let mut want = picked.clone();
    want.sort();
    assert_eq!(got, want);
    let span: u64 = local.manifest.rows().iter().step_by(3).map(|r| r.sample_size).sum();
    assert_eq!(report.bytes_read, span, "only the subset's bytes are fetched");

    // The command, configured from the environment as in production.
    let bin = common::BIN;
    let cli = |source: &str, env: bool| {
        let mut c = Command::new(bin);
        c.args(["stream", source, "--keys", "--seed", "3", "--epoch", "2", "--world", "2", "--rank", "1"]);
        if env {
            c.env("AWS_ENDPOINT_URL", server.endpoint())
                .env("AWS_ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", AK)
                .env("AWS_SECRET_ACCESS_KEY", SK)
                .env("AWS_DEFAULT_REGION", "us-east-1");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let from_s3 = cli("s3://bkt/ds", true);
    assert_eq!(from_s3.lines().count(), 20);
    assert_eq!(from_s3, cli(ds.to_str().unwrap(), false));
}

#[test]
fn s3_server_killed_and_restarted_mid_epoch_still_delivers_every_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 240, 64, 30);
    let mut server = Server::start(dir.path());
    let o = LoaderOptions { prefetch: 2, prefetch_batches: 1, ..opts(&server.endpoint(), 8) };
    let loader = Loader::open("s3://bkt/ds", o).unwrap();
    let mut it = loader.epoch(0);
    let mut delivered = Vec::new();
    for _ in 0..5 {
        delivered.extend(it.next().unwrap().unwrap().keys);
    }
    server.kill();
    // Keep consuming while the server is down: the loader rides it out.
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        server.restart();
        server
    });
    for batch in &mut it {
        delivered.extend(batch.unwrap().keys);
    }
    let _server = restarter.join().unwrap();
    let report = it.report().unwrap();
    eprintln!("after the restart: {report:?}");
    assert!(report.accounted() && report.skipped == 0, "{report:?}");
    assert_eq!(report.delivered, 240);
    assert_exactly_once(&delivered, &ds);
}

/// A TCP proxy that closes every connection after `budget` bytes from the
/// server: every response body larger than that breaks mid-stream.
fn cutting_proxy(upstream: u16, budget: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
            });
            std::thread::spawn(move || {
                let (mut server, mut client) = (server, client);
                let mut left = budget;
                let mut buf = [0u8; 8192];
                while left > 0 {
                    let Ok(n) = server.read(&mut buf[..left.min(8192)]) else { break };
                    if n == 0 || client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    left -= n;
                }
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn s3_connections_cut_mid_shard_resume_from_the_byte_already_read() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 60, 64, 30);
    let server = Server::start(dir.path());
    // The manifest is read directly; shard bodies go through the proxy.
    let proxy = cutting_proxy(server.port, 16 << 10);
    let shard_bytes: u64 = Dataset::open(&ds).unwrap().manifest.rows().iter().map(|r| r.sample_size).sum();
    assert!(shard_bytes > 20 * (16 << 10), "shards must be much larger than the cut");
    // object_store re-requests a broken body itself (4 times here); when
    // that runs out, the loader asks again from the byte already read.
    let retry = Retry { retries: 4, backoff: Duration::from_millis(1) };
    let loader = Loader::open(
        "s3://bkt/ds",
        LoaderOptions { prefetch: 1, retry, ..opts(&format!("http://127.0.0.1:{proxy}"), 8) },
    )
    .unwrap();
    let (batches, report) = drain(&mut loader.epoch(0));
    eprintln!("through the cutting proxy: {report:?}");
    assert!(report.accounted() && report.skipped == 0, "{report:?}");
    assert_exactly_once(&keys(&batches), &ds);
    // Every byte was fetched once: each interrupted body continued where it broke.
    assert_eq!(report.bytes_read, shard_bytes, "{report:?}");
    assert!(report.resumed_reads > 0, "the loader's own resumption was exercised: {report:?}");
    // And the same pixels as from disk.
    let (local, _) = drain(&mut Loader::open(ds.to_str().unwrap(), opts(&server.endpoint(), 8)).unwrap().epoch(0));
    for (a, b) in batches.iter().zip(&local) {
        assert_eq!((&a.keys, &a.pixels), (&b.keys, &b.pixels));
    }
}

#[test]
fn s3_retries_running_out_is_an_error_naming_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 12, 32, 6);
    let mut server = Server::start(dir.path());
    let o = LoaderOptions {
        retry: Retry { retries: 1, backoff: Duration::from_millis(20) },
        ..opts(&server.endpoint(), 4)
    };
    let loader = Loader::open("s3://bkt/ds", o).unwrap();
    server.kill();
    let started = Instant::now();
    let mut it = loader.epoch(0);
    let err = it.find_map(|b| b.err()).expect("an error once the retries run out");
    let text = err.to_string();
    assert!(text.contains("s3://bkt/ds/shards/demo-00000") && text.contains(".tar"), "{text}");
    assert!(text.contains("gave up at byte"), "{text}");
    assert!(it.next().is_none(), "the epoch ends after the error");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!it.report().unwrap().complete);
}
