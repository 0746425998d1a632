//! What the test modules share: the `chess-shards` binary and demo datasets
//! written through the library.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chess_schemas::PixelDtype;
use chess_shards::{demo, DatasetWriter, FinishInfo};

/// The `chess-shards` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_chess-shards");

pub fn bin() -> Command {
    Command::new(BIN)
}

/// Runs the binary with `args` and collects its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

/// Stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes `n` demo phantoms of `size`² (uint16), `per_shard` per shard, at
/// `root` and returns it.
pub fn demo_dataset(root: &Path, n: u64, size: u32, per_shard: u64, paired: bool) -> PathBuf {
    let opts = demo::demo_options(PixelDtype::Uint16, per_shard, paired);
    let mut writer = DatasetWriter::create(root, opts).unwrap();
    for i in 0..n {
        writer.write(&demo::demo_sample(i, size, PixelDtype::Uint16, paired)).unwrap();
    }
    writer
        .finish(FinishInfo { tool_version: "test".into(), deid_method: "synthetic".into(), ..Default::default() })
        .unwrap();
    root.to_path_buf()
}

/// Every shard of `ds` holds samples in strictly ascending key order (the writer's and merge's rule).
pub fn assert_shards_sorted_by_key(ds: &chess_shards::Dataset) {
    for shard in ds.shards() {
        let file = std::fs::File::open(ds.shard_path(&shard).unwrap()).unwrap();
        let keys: Vec<String> =
            chess_shards::ShardReader::new(std::io::BufReader::new(file), shard).map(|s| s.unwrap().key).collect();
        assert!(!keys.is_empty() && keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }
}
