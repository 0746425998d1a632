//! The member codec policy: a sample's level-3 zstd frame is kept only when
//! it saves at least `min_saving` of the bytes, otherwise the member is a
//! zstd frame of raw blocks; both decode with any zstd reader, and
//! `dataset.json` counts them.

use chess_schemas::PixelDtype;
use chess_shards::image::{raw_frame_blocks, FrameKind};
use chess_shards::reader::ShardReader;
use chess_shards::writer::{FrameCounts, FRAMES_KEY};
use chess_shards::{Dataset, DatasetWriter, FinishInfo, Image, NpyZstDecoder, Sample, WriterOptions};

/// uint16 noise over the full range: zstd saves nothing.
fn noise(seed: u64, n: u32) -> Image {
    let mut rng = chess_shards::rng::SplitMix64::seeded(seed);
    let px: Vec<u16> = (0..n * n).map(|_| rng.next_u64() as u16).collect();
    Image::from_u16(n, n, &px)
}

/// A smooth uint16 gradient: zstd saves far more than 10 %.
fn smooth(seed: u64, n: u32) -> Image {
    let px: Vec<u16> = (0..n * n).map(|i| ((i / n + i % n) * 16 + seed as u32) as u16).collect();
    Image::from_u16(n, n, &px)
}

fn options(dtype: PixelDtype) -> WriterOptions {
    WriterOptions { shard_name: "codec".into(), max_shard_samples: 3, dtype, ..WriterOptions::default() }
}

fn sample(key: String, image: Image) -> Sample {
    Sample { key, image, extras: Vec::new(), fields: Default::default() }
}

/// Frame kinds of every image member, in shard order, from the shards themselves.
fn member_kinds(ds: &Dataset) -> Vec<FrameKind> {
    let mut kinds = Vec::new();
    for shard in ds.shards() {
        let file = std::fs::File::open(ds.shard_path(&shard).unwrap()).unwrap();
        for s in ShardReader::new(std::io::BufReader::new(file), shard) {
            let s = s.unwrap();
            let data = &s.member("npy.zst").unwrap().data;
            kinds.push(if raw_frame_blocks(data).is_some() { FrameKind::Raw } else { FrameKind::Compressed });
        }
    }
    kinds
}

fn recorded(ds: &Dataset) -> FrameCounts {
    let info = ds.info.as_ref().unwrap();
    serde_json::from_value(info.provenance[FRAMES_KEY].clone()).unwrap()
}

#[test]
fn compression_is_kept_only_where_it_pays_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = DatasetWriter::create(dir.path(), options(PixelDtype::Uint16)).unwrap();
    // Smooth gradients compress well; noise does not.
    let images: Vec<Image> = (0..7).map(|i| if i % 2 == 0 { smooth(i, 48) } else { noise(i, 48) }).collect();
    for (i, image) in images.iter().enumerate() {
        writer.write(&sample(format!("k{i}"), image.clone())).unwrap();
    }
    writer.finish(FinishInfo::default()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let kinds = member_kinds(&ds);
    let expected: Vec<FrameKind> =
        (0..7).map(|i| if i % 2 == 0 { FrameKind::Compressed } else { FrameKind::Raw }).collect();
    assert_eq!(kinds, expected);
    assert_eq!(recorded(&ds), FrameCounts { compressed: 4, raw: 3 });
    let mut decoder = NpyZstDecoder::new();
    for (row, image) in ds.manifest.rows().iter().zip(&images) {
        assert_eq!(&ds.read_image(row, &mut decoder).unwrap(), image, "{}", row.key);
        let stored = row.size as usize;
        let npy = image.data.len() + 128;
        if row.key.ends_with(['1', '3', '5']) {
            assert!(stored > npy, "raw frame of {} holds the whole .npy ({stored} bytes)", row.key);
        } else {
            assert!((stored as f64) < 0.9 * npy as f64, "compressed {} saves at least 10 %", row.key);
        }
    }
    assert!(chess_shards::verify::verify(&ds, &|_| {}).unwrap().ok());
}

#[test]
fn a_zero_share_keeps_every_compressed_frame_and_a_bad_share_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions { min_saving: 0.0, ..options(PixelDtype::Uint16) };
    let mut writer = DatasetWriter::create(dir.path(), opts).unwrap();
    writer.write(&sample("n".into(), noise(1, 32))).unwrap();
    writer.finish(FinishInfo::default()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(member_kinds(&ds), vec![FrameKind::Compressed]);
    assert_eq!(recorded(&ds), FrameCounts { compressed: 1, raw: 0 });
    let other = tempfile::tempdir().unwrap();
    for bad in [1.0, -0.1, f64::NAN] {
        let opts = WriterOptions { min_saving: bad, ..options(PixelDtype::Uint16) };
        assert!(DatasetWriter::create(other.path(), opts).is_err(), "min_saving {bad}");
    }
}

#[test]
fn frame_counts_survive_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Image> = (0..8).map(|i| if i < 4 { noise(i, 32) } else { smooth(i, 32) }).collect();
    let mut writer = DatasetWriter::create(dir.path(), options(PixelDtype::Uint16)).unwrap();
    for (i, image) in images.iter().enumerate().take(5) {
        writer.write(&sample(format!("k{i}"), image.clone())).unwrap();
    }
    drop(writer); // a crash: shard 0 (k0..k2) is complete, shard 1 is partial
    let (mut writer, done) = DatasetWriter::resume(dir.path(), options(PixelDtype::Uint16)).unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(writer.frame_counts(), FrameCounts { compressed: 0, raw: 3 });
    for (i, image) in images.iter().enumerate().skip(3) {
        writer.write(&sample(format!("k{i}"), image.clone())).unwrap();
    }
    writer.finish(FinishInfo::default()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(recorded(&ds), FrameCounts { compressed: 4, raw: 4 });
    let kinds = member_kinds(&ds);
    assert_eq!(kinds.iter().filter(|k| **k == FrameKind::Raw).count(), 4);
}

#[test]
fn the_loader_delivers_the_same_pixels_from_raw_and_compressed_frames() {
    use chess_shards::loader::{Loader, LoaderOptions};
    // 300x300 uint16 is 180 kB: raw frames of two blocks, pixels spanning both;
    // smooth images in between take the zstd-decoding path.
    let images: Vec<Image> = (0..8).map(|i| if i % 2 == 0 { noise(100 + i, 300) } else { smooth(i, 300) }).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = DatasetWriter::create(dir.path(), options(PixelDtype::Uint16)).unwrap();
    for (i, image) in images.iter().enumerate() {
        writer.write(&sample(format!("k{i}"), image.clone())).unwrap();
    }
    writer.finish(FinishInfo::default()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let kinds = member_kinds(&ds);
    assert_eq!(kinds.iter().filter(|k| **k == FrameKind::Raw).count(), 4, "{kinds:?}");
    for verify_hashes in [false, true] {
        let lo = LoaderOptions { batch_size: 3, shuffle: false, verify_hashes, ..LoaderOptions::default() };
        let loader = Loader::open(dir.path().to_str().unwrap(), lo).unwrap();
        let mut it = loader.epoch(0);
        let mut pixels: Vec<u16> = Vec::new();
        for batch in &mut it {
            pixels.extend_from_slice(batch.unwrap().pixels.as_u16().unwrap());
        }
        assert_eq!(it.report().unwrap().skipped, 0, "hashes match (verify {verify_hashes})");
        let expected: Vec<u16> = images.iter().flat_map(|i| i.to_u16()).collect();
        assert!(pixels == expected, "pixels differ (verify {verify_hashes})");
    }
}
