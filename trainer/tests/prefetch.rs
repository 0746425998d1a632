//! The data path: the prefetch thread yields exactly the batches of the
//! synchronous path, in the same order (keys, positions, resume states,
//! pixels and the float input made from them), and the zero-copy wrap views
//! the loader's buffer without copying it.

use crate::common;

use chess_schemas::PixelDtype;
use chess_shards::loader::{Loader, LoaderOptions};
use chess_train::data;
use chess_train::data::prefetch::Prefetcher;
use tch::Device;

fn options() -> LoaderOptions {
    LoaderOptions { seed: 5, batch_size: 4, shuffle: true, shuffle_buffer: 8, ..LoaderOptions::default() }
}

fn same_batches(dtype: PixelDtype) {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("ds");
    common::demo_dataset(&data_dir, 22, 48, dtype);
    let loader = Loader::open(data_dir.to_str().unwrap(), options()).unwrap();
    for epoch in 0..2 {
        // Synchronous: one batch at a time, copied.
        let mut sync = Vec::new();
        for b in &mut loader.epoch(epoch) {
            let b = b.unwrap();
            let raw = data::upload(&b, Device::Cpu);
            sync.push((b.keys.clone(), b.index, b.state, raw.pixels(), raw.to_unit(32)));
        }
        // Prefetched: a thread ahead of the consumer, batches wrapped without copies and recycled.
        let mut pre = Prefetcher::start(loader.epoch(epoch), Device::Cpu, 2);
        let mut got = Vec::new();
        while let Some(f) = pre.next_batch().unwrap() {
            let keys = f.raw.batch().unwrap().keys.clone();
            got.push((keys, f.index, f.state, f.raw.pixels(), f.raw.to_unit(32)));
            pre.recycle(f.raw);
        }
        let report = pre.finish().expect("the epoch ran to its end");
        assert!(report.accounted());
        assert_eq!(got.len(), sync.len());
        assert_eq!(sync.len(), 6, "22 samples in batches of 4, remainder kept");
        for (i, (s, g)) in sync.iter().zip(&got).enumerate() {
            assert_eq!(s.0, g.0, "epoch {epoch} batch {i}: keys");
            assert_eq!((s.1, s.2), (g.1, g.2), "epoch {epoch} batch {i}: index and resume state");
            assert!(s.3.equal(&g.3), "epoch {epoch} batch {i}: raw pixels differ");
            assert!(s.4.equal(&g.4), "epoch {epoch} batch {i}: float input differs");
        }
    }
}

#[test]
fn prefetched_batches_equal_synchronous_batches_uint16() {
    same_batches(PixelDtype::Uint16);
}

#[test]
fn prefetched_batches_equal_synchronous_batches_uint8() {
    same_batches(PixelDtype::Uint8);
}

/// On the CPU the wrapped tensor is the loader's buffer itself.
#[test]
fn wrap_views_the_loader_buffer_without_copying() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("ds");
    common::demo_dataset(&data_dir, 4, 32, PixelDtype::Uint16);
    let loader = Loader::open(data_dir.to_str().unwrap(), options()).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    let buffer = batch.pixels.as_u16().unwrap().as_ptr() as usize;
    let expected: Vec<u16> = batch.pixels.as_u16().unwrap().to_vec();
    let raw = data::wrap(batch, Device::Cpu);
    assert_eq!(raw.data_ptr(), buffer, "the tensor views the loader's buffer");
    let owner_ptr = raw.batch().unwrap().pixels.as_u16().unwrap().as_ptr() as usize;
    assert_eq!(owner_ptr, buffer, "the batch was moved, not copied");
    let unit = raw.to_unit(0);
    let want: Vec<f32> = expected.iter().map(|&v| v as f32 / 65535.0).collect();
    let got: Vec<f32> = Vec::try_from(unit.flatten(0, -1)).unwrap();
    assert_eq!(got, want);
    let back = raw.into_batch().unwrap();
    assert_eq!(back.pixels.as_u16().unwrap().as_ptr() as usize, buffer);
}

/// A consumer that stops early (the run's last step) does not hang the thread.
#[test]
fn stopping_early_ends_the_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("ds");
    common::demo_dataset(&data_dir, 40, 32, PixelDtype::Uint8);
    let loader = Loader::open(data_dir.to_str().unwrap(), options()).unwrap();
    let mut pre = Prefetcher::start(loader.epoch(0), Device::Cpu, 1);
    let first = pre.next_batch().unwrap().unwrap();
    assert_eq!(first.index, 0);
    // Not at the end: no report, and finish returns.
    assert!(pre.finish().is_none());
}
