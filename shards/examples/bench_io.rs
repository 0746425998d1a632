//! Benchmark of shard write and read throughput on one core, next to raw
//! zstd decompression of the same member bytes.
//!
//! Run through `scripts/bench/shards_io.sh`, which also runs the Python peer
//! (webdataset + zstandard + NumPy) on the same shards. Prints one JSON
//! object; all figures are single-threaded (per core).
//!
//! Usage: bench_io <OUT_DIR> [SAMPLES] [REPEATS]

use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use chess_schemas::PixelDtype;
use chess_shards::{demo, Dataset, DatasetWriter, FinishInfo, NpyZstDecoder, ShardReader, WriterOptions};

fn best_of<F: FnMut() -> u64>(repeats: usize, mut f: F) -> (f64, u64) {
    let mut best = f64::INFINITY;
    let mut check = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        check = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, check)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).ok_or("usage: bench_io OUT_DIR [SAMPLES] [REPEATS]")?);
    let n: u64 = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let repeats: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let size = 512u32;
    let raw_bytes = (size * size * 2) as f64;

    let samples: Vec<_> = (0..n).map(|i| demo::demo_sample(i, size, PixelDtype::Uint16, false)).collect();

    // Write: encode (npy + zstd level 3) + tar + staging, one thread.
    let opts = WriterOptions { shard_name: "bench".into(), ..demo::demo_options(PixelDtype::Uint16, 64, false) };
    let mut write_best = f64::INFINITY;
    for _ in 0..repeats.min(3) {
        let _ = std::fs::remove_dir_all(&out);
        let t = Instant::now();
        let mut writer = DatasetWriter::create(&out, opts.clone())?;
        for s in &samples {
            writer.write(s)?;
        }
        writer.finish(FinishInfo { tool_version: "bench".into(), ..Default::default() })?;
        write_best = write_best.min(t.elapsed().as_secs_f64());
    }

    let ds = Dataset::open(&out)?;
    let shards: Vec<_> = ds.shards().into_iter().map(|s| ds.shard_path(&s)).collect::<Result<_, _>>()?;
    let rows = ds.manifest.rows();
    // The compressed members, in memory, for the raw-decompression baseline.
    let members: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            let f = File::open(ds.shard_path(&r.shard).unwrap()).unwrap();
            let mut buf = vec![0; r.size as usize];
            f.read_exact_at(&mut buf, r.offset).unwrap();
            buf
        })
        .collect();
    let compressed_bytes: u64 = members.iter().map(|m| m.len() as u64).sum();

    // Raw zstd decompression of the same bytes into a reused buffer.
    let mut ctx = zstd::bulk::Decompressor::new()?;
    let mut scratch = Vec::with_capacity(raw_bytes as usize + 4096);
    let (raw_s, raw_check) = best_of(repeats, || {
        let mut total = 0;
        for m in &members {
            scratch.clear();
            ctx.decompress_to_buffer(m, &mut scratch).unwrap();
            total += scratch.len() as u64;
        }
        total
    });

    // Streaming read: open each shard, parse tar, decode every image.
    let (stream_s, stream_check) = best_of(repeats, || {
        let mut decoder = NpyZstDecoder::new();
        let mut total = 0;
        for path in &shards {
            let file = BufReader::with_capacity(1 << 20, File::open(path).unwrap());
            for raw in ShardReader::new(file, path.display().to_string()) {
                let raw = raw.unwrap();
                let image = decoder.decode(&raw.member("npy.zst").unwrap().data).unwrap();
                total += image.data.len() as u64;
            }
        }
        total
    });

    // Random access: one positioned read per manifest row, then decode.
    let (random_s, random_check) = best_of(repeats, || {
        let mut decoder = NpyZstDecoder::new();
        let files: Vec<File> = shards.iter().map(|p| File::open(p).unwrap()).collect();
        let index: std::collections::HashMap<&str, usize> = ds
            .shards()
            .iter()
            .enumerate()
            .map(|(i, s)| (rows.iter().find(|r| &r.shard == s).unwrap().shard.as_str(), i))
            .collect();
        let mut buf = Vec::new();
        let mut total = 0;
        for r in &rows {
            buf.resize(r.size as usize, 0);
            files[index[r.shard.as_str()]].read_exact_at(&mut buf, r.offset).unwrap();
            total += decoder.decode(&buf).unwrap().data.len() as u64;
        }
        total
    });
    assert!(raw_check >= stream_check && stream_check == random_check);

    let per = |secs: f64| (n as f64 / secs, n as f64 * raw_bytes / secs / 1e6);
    let (w_sps, w_mbs) = per(write_best);
    let (raw_sps, raw_mbs) = per(raw_s);
    let (s_sps, s_mbs) = per(stream_s);
    let (r_sps, r_mbs) = per(random_s);
    println!(
        "{}",
        serde_json::json!({
            "samples": n,
            "image": "512x512 uint16",
            "compression_ratio": n as f64 * raw_bytes / compressed_bytes as f64,
            "write": {"samples_per_s": w_sps, "mb_per_s": w_mbs},
            "raw_zstd_decompress": {"samples_per_s": raw_sps, "mb_per_s": raw_mbs},
            "stream_read": {"samples_per_s": s_sps, "mb_per_s": s_mbs, "time_vs_raw": stream_s / raw_s},
            "random_read": {"samples_per_s": r_sps, "mb_per_s": r_mbs, "time_vs_raw": random_s / raw_s},
        })
    );
    Ok(())
}
