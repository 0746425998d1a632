//! Round trips of the dataset format through the library: writer → manifest
//! → streaming reader and random access; crash recovery; corrupt input.

use std::fs;
use std::path::Path;

use chess_schemas::{LabelColumn, LabelType, PixelDtype};
use chess_shards::{
    reader::ShardReader, Dataset, DatasetWriter, FinishInfo, Image, LabelValue, NpyZstDecoder, Sample, SampleFields,
    ShardError, WriterOptions,
};

fn image(seed: u32, h: u32, w: u32) -> Image {
    let px: Vec<u16> = (0..h * w).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 977) >> 7) as u16).collect();
    Image::from_u16(h, w, &px)
}

fn options() -> WriterOptions {
    WriterOptions {
        shard_name: "test".into(),
        max_shard_samples: 3,
        with_split: true,
        labels: vec![
            LabelColumn { name: "Cardiomegaly".into(), label_type: LabelType::Float32 },
            LabelColumn { name: "class".into(), label_type: LabelType::Utf8 },
        ],
        extra_fields: vec!["target".into()],
        ..WriterOptions::default()
    }
}

fn sample(i: u32) -> Sample {
    Sample {
        key: format!("s{i:04}"),
        image: image(i, 16 + i % 3, 20),
        extras: if i.is_multiple_of(2) { vec![("target".into(), image(i + 100, 16 + i % 3, 20))] } else { vec![] },
        fields: SampleFields {
            patient_id: Some(format!("p{}", i / 2)),
            view_position: Some(if i.is_multiple_of(2) { "PA" } else { "AP" }.into()),
            sex: Some("F".into()),
            age_years: (!i.is_multiple_of(4)).then_some(30.0 + i as f32),
            split: Some("train".into()),
            labels: vec![
                if i.is_multiple_of(3) { LabelValue::Null } else { LabelValue::Float(-1.0) },
                LabelValue::Str(format!("c{i}")),
            ],
            ..SampleFields::default()
        },
    }
}

fn write_dataset(root: &Path, n: u32) -> Vec<Sample> {
    let mut writer = DatasetWriter::create(root, options()).unwrap();
    let samples: Vec<Sample> = (0..n).map(sample).collect();
    for s in &samples {
        writer.write(s).unwrap();
    }
    let info = writer.finish(FinishInfo { tool_version: "test".into(), ..FinishInfo::default() }).unwrap();
    assert_eq!(info.sample_count, n as u64);
    assert_eq!(info.shard_count, n.div_ceil(3) as u64);
    samples
}

#[test]
fn written_dataset_reads_back_by_stream_and_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let samples = write_dataset(dir.path(), 7);
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.manifest.len(), 7);
    assert_eq!(ds.info.as_ref().unwrap().image_size, None, "sizes vary");
    let rows = ds.manifest.rows();
    let mut decoder = NpyZstDecoder::new();
    for (row, s) in rows.iter().zip(&samples) {
        assert_eq!(row.key, s.key);
        assert_eq!(row.labels, s.fields.labels);
        assert_eq!(row.age_years, s.fields.age_years);
        assert_eq!(ds.read_image(row, &mut decoder).unwrap(), s.image);
        let full = ds.read_sample(row, &mut decoder).unwrap();
        assert_eq!(full.extras, s.extras);
        let meta = full.meta.unwrap();
        assert_eq!(meta.pixel_hash, row.pixel_hash);
        assert_eq!(meta.view_position, s.fields.view_position);
    }
    // Streaming: every shard, without seeking, yields the samples in order.
    let mut seen = Vec::new();
    for shard in ds.shards() {
        let file = fs::File::open(ds.shard_path(&shard).unwrap()).unwrap();
        for raw in ShardReader::new(file, shard.clone()) {
            let raw = raw.unwrap();
            let row = rows.iter().find(|r| r.key == raw.key).unwrap();
            assert_eq!(raw.member("npy.zst").unwrap().data_offset, row.offset);
            assert_eq!(raw.header_offset(), row.sample_offset);
            assert_eq!(raw.span(), row.sample_size);
            seen.push(raw.key);
        }
    }
    assert_eq!(seen, samples.iter().map(|s| s.key.clone()).collect::<Vec<_>>());
}

#[test]
fn resume_keeps_complete_shards_and_drops_partial_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = DatasetWriter::create(dir.path(), options()).unwrap();
    for i in 0..7 {
        writer.write(&sample(i)).unwrap();
    }
    // Simulate a crash: the writer is dropped without finish. Shards 0 and 1
    // are complete; the third is still a .tmp file.
    drop(writer);
    assert!(DatasetWriter::create(dir.path(), options()).is_err(), "unfinished work is not silently overwritten");
    let (mut writer, done) = DatasetWriter::resume(dir.path(), options()).unwrap();
    let expected: Vec<String> = (0..6).map(|i| format!("s{i:04}")).collect();
    assert_eq!(done, expected.iter().map(String::as_str).collect::<chess_shards::WrittenKeys>());
    assert!(!done.contains("s0006"));
    for i in 0..9 {
        if !done.contains(&format!("s{i:04}")) {
            writer.write(&sample(i)).unwrap();
        }
    }
    writer.finish(FinishInfo::default()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let keys: Vec<String> = ds.manifest.rows().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, (0..9).map(|i| format!("s{i:04}")).collect::<Vec<_>>());
    assert!(!dir.path().join(".staging").exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("shards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn invalid_samples_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = DatasetWriter::create(dir.path(), options()).unwrap();
    let mut bad = sample(0);
    bad.key = "has.dot".into();
    assert!(writer.write(&bad).unwrap_err().to_string().contains("has.dot"));
    let mut bad = sample(0);
    bad.image = Image::from_u8(2, 2, vec![0; 4]);
    assert!(writer.write(&bad).unwrap_err().to_string().contains("uint8"));
    let mut bad = sample(0);
    bad.fields.labels.pop();
    assert!(writer.write(&bad).is_err());
    writer.write(&sample(0)).unwrap();
    assert!(writer.write(&sample(0)).unwrap_err().to_string().contains("duplicate"));
    let _ = PixelDtype::Uint8;
}

#[test]
fn truncated_and_corrupt_shards_give_errors_naming_shard_and_member() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 3);
    let shard = dir.path().join("shards/test-000000.tar");
    let bytes = fs::read(&shard).unwrap();
    // Every truncation point: an error or a clean shorter stream, never a panic.
    for cut in (0..bytes.len()).step_by(97) {
        let results: Vec<_> = ShardReader::new(&bytes[..cut], "test-000000.tar").collect();
        if let Some(Err(e)) = results.last() {
            assert!(e.to_string().contains("test-000000.tar"), "{e}");
        }
    }
    // Flip a byte inside the first image's compressed data.
    let ds = Dataset::open(dir.path()).unwrap();
    let row = &ds.manifest.rows()[0];
    let mut corrupt = bytes.clone();
    corrupt[(row.offset + row.size / 2) as usize] ^= 0xff;
    corrupt[(row.offset + 5) as usize] ^= 0xff;
    fs::write(&shard, &corrupt).unwrap();
    match ds.read_image(row, &mut NpyZstDecoder::new()) {
        Err(ShardError::Member { shard, member, .. }) => {
            assert_eq!(shard, "shards/test-000000.tar");
            assert_eq!(member, "s0000.npy.zst");
        }
        Ok(img) => assert_ne!(chess_shards::pixel_hash(&img), row.pixel_hash, "corruption must be detectable"),
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Random byte flips, insertions and cuts anywhere in a shard: every read
/// ends in samples or typed errors, never a panic or a hang.
#[test]
fn mutated_shards_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 3);
    let bytes = fs::read(dir.path().join("shards/test-000000.tar")).unwrap();
    let mut rng = chess_shards::rng::SplitMix64::seeded(99);
    let mut decoder = NpyZstDecoder::new();
    for round in 0..400 {
        let mut m = bytes.clone();
        match round % 3 {
            0 => {
                for _ in 0..1 + rng.next_u64() % 8 {
                    let at = (rng.next_u64() % m.len() as u64) as usize;
                    m[at] = rng.next_u64() as u8;
                }
            }
            1 => {
                let at = (rng.next_u64() % m.len() as u64) as usize;
                m.splice(at..at, (0..1 + rng.next_u64() % 600).map(|_| rng.next_u64() as u8));
            }
            _ => m.truncate((rng.next_u64() % m.len() as u64) as usize),
        }
        for raw in ShardReader::new(&m[..], "mutated.tar") {
            match raw {
                Ok(raw) => {
                    let _ = chess_shards::reader::decode_sample(&raw, "mutated.tar", &mut decoder);
                }
                Err(e) => assert!(e.to_string().contains("mutated.tar"), "{e}"),
            }
        }
    }
}
