//! Trusted de-identification end to end (issue 15): the dataset is a
//! function of the inputs and the key — byte-identical whatever
//! `--threads`, ordered by keyed pseudonym inside each shard, duplicates
//! resolved by walk order; `private/` is 0700 with 0600 files whatever the
//! umask; `--dates none|shifted|year`; no input value on the captured
//! streams at `CHESS_LOG=trace`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::{Array, StringArray};

use crate::common::{self, Synth};

fn run(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    let mut c = common::chess_ingest();
    c.args(args.iter().map(|a| a.as_ref()));
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    o
}

fn strings(path: &Path, column: &str) -> Vec<Option<String>> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let a = b.column_by_name(column).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        out.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())));
    }
    out
}

/// Every file of a dataset except `private/`, by relative path.
fn shareable(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(root).unwrap().to_string_lossy().to_string())
        .filter(|p| !p.starts_with("private"))
        .map(|p| (p.clone(), std::fs::read(root.join(&p)).unwrap()))
        .collect()
}

/// An archive of 40 synthetic radiographs in folders named like patients,
/// with two identical-pixel copies (other SOPInstanceUIDs) and one file
/// repeated under another name.
fn archive(dir: &Path) -> PathBuf {
    let inp = dir.join("in");
    for i in 0..40u32 {
        let folder = inp.join(format!("MRN{:04}_DOE", 1000 + i / 4));
        std::fs::create_dir_all(&folder).unwrap();
        let mut s = Synth::new(&format!("1.2.826.0.1.3680043.10.15.{i}"), 1000 + i);
        s.rows = 120;
        s.columns = 110;
        s.write(&folder.join(format!("IMG{i:03}.dcm")));
    }
    // Same pixels as IMG005 (same seed), another SOPInstanceUID: either could be kept; walk order decides.
    let mut s = Synth::new("1.2.826.0.1.3680043.10.15.900", 1005);
    s.rows = 120;
    s.columns = 110;
    s.write(&inp.join("AAA_copy.dcm"));
    s.sop = "1.2.826.0.1.3680043.10.15.901".into();
    s.write(&inp.join("ZZZ_copy.dcm"));
    std::fs::copy(inp.join("MRN1001_DOE/IMG004.dcm"), inp.join("MRN1001_DOE/IMG004_again.dcm")).unwrap();
    inp
}

#[test]
fn three_thread_counts_give_byte_identical_datasets_ordered_by_keyed_pseudonym() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = archive(tmp.path());
    let key = tmp.path().join("key");
    std::fs::write(&key, [15u8; 32]).unwrap();
    let mut datasets = Vec::new();
    for threads in ["1", "2", "4"] {
        let out = tmp.path().join(format!("out{threads}"));
        run(
            &[
                &inp,
                &"--out",
                &out,
                &"--key-file",
                &key,
                &"--threads",
                &threads,
                &"--shard-samples",
                &"7",
                &"--dates",
                &"shifted",
                &"--burned-in",
                &"keep",
                &"--quiet",
            ],
            &[],
        );
        datasets.push((threads, out.clone(), shareable(&out)));
    }
    let (_, first_root, first) = &datasets[0];
    assert!(first.keys().any(|k| k.starts_with("shards/")) && first.contains_key("manifest.parquet"));
    for (threads, _, d) in &datasets[1..] {
        assert_eq!(d.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>(), "--threads {threads}: other files");
        for (rel, bytes) in d {
            assert!(bytes == &first[rel], "--threads {threads}: {rel} differs from --threads 1");
        }
    }
    // Within each shard, rows are sorted by key (the keyed pseudonym), not by source path.
    let manifest = first_root.join("manifest.parquet");
    let keys: Vec<String> = strings(&manifest, "key").into_iter().map(Option::unwrap).collect();
    let shards: Vec<String> = strings(&manifest, "shard").into_iter().map(Option::unwrap).collect();
    assert_eq!(keys.len(), 40, "41 images, one pixel twin of the first copy (IMG005) dropped");
    let mut by_shard: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, s) in keys.iter().zip(&shards) {
        by_shard.entry(s).or_default().push(k);
    }
    assert_eq!(by_shard.len(), 6);
    for (s, ks) in &by_shard {
        assert!(ks.windows(2).all(|w| w[0] < w[1]), "{s}: not in key order: {ks:?}");
    }
    // The duplicate-pixel rule: the first in walk order (AAA_copy.dcm, then
    // MRN1001_DOE/IMG005.dcm, then ZZZ_copy.dcm) is kept, whatever the threads.
    let rej = |root: &Path| -> BTreeMap<String, String> {
        let p = root.join("private/rejected.parquet");
        strings(&p, "source_path")
            .into_iter()
            .map(Option::unwrap)
            .map(|s| s.rsplit('/').next().unwrap().to_string())
            .zip(strings(&p, "reason_code").into_iter().map(Option::unwrap))
            .collect()
    };
    for (threads, root, _) in &datasets {
        let r = rej(root);
        assert_eq!(
            r,
            BTreeMap::from([
                ("IMG004_again.dcm".to_string(), "duplicate_sop_instance".to_string()),
                ("IMG005.dcm".to_string(), "duplicate_pixels".to_string()),
                ("ZZZ_copy.dcm".to_string(), "duplicate_pixels".to_string()),
            ]),
            "--threads {threads}"
        );
    }
}

#[cfg(unix)]
#[test]
fn private_is_0700_and_its_files_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..3 {
        Synth::new(&format!("1.2.826.0.1.3680043.10.16.{i}"), 40 + i).write(&inp.join(format!("{i}.dcm")));
    }
    std::fs::write(inp.join("notes.txt"), "x").unwrap(); // a reject row
    let out = tmp.path().join("out");
    // umask 000: without explicit modes everything would be world-writable.
    let o = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_chess-ingest"))
        .arg(&inp)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--burned-in", "keep"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let private = out.join("private");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700);
    let mut names = Vec::new();
    for e in std::fs::read_dir(&private).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?} is {mode:o}", e.path());
        names.push(e.file_name().to_string_lossy().to_string());
    }
    names.sort();
    assert_eq!(names, ["journal.jsonl", "key", "rejected.parquet", "run.json"]);
}

#[test]
fn dates_none_shifted_or_year() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..3 {
        Synth::new(&format!("1.2.826.0.1.3680043.10.17.{i}"), 50 + i).write(&inp.join(format!("{i}.dcm")));
    }
    let key = tmp.path().join("key");
    std::fs::write(&key, [17u8; 32]).unwrap();
    let ingest = |dates: &str| {
        let out = tmp.path().join(dates);
        run(&[&inp, &"--out", &out, &"--key-file", &key, &"--dates", &dates, &"--burned-in", &"keep", &"--quiet"], &[]);
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
        (out, info)
    };
    let (_, info) = ingest("none");
    assert_eq!(info["provenance"]["dates"], "none");
    assert_eq!(info["labels"], serde_json::json!([]), "no date column");
    // Synth writes no StudyDate: the columns exist and are null; the values
    // themselves (shift, year) are checked by the Python answer key.
    let (shifted, info) = ingest("shifted");
    assert!(info["deid_method"].as_str().unwrap().contains("Modified Dates Option"));
    assert_eq!(strings(&shifted.join("manifest.parquet"), "study_date_shifted"), vec![None, None, None]);
    let (year, info) = ingest("year");
    assert!(info["deid_method"].as_str().unwrap().contains("only the year"), "{}", info["deid_method"]);
    assert_eq!(strings(&year.join("manifest.parquet"), "study_year_shifted"), vec![None, None, None]);
    let o = common::chess_ingest().arg(&inp).args(["--dates", "month"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "an unknown --dates is a usage error");
}

#[test]
fn no_input_value_reaches_the_streams_even_at_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = archive(tmp.path());
    // A header value dicom-rs quotes in a warning: an unsupported SpecificCharacterSet.
    let marker_charset = "ISO_IR MRKCHARSET77";
    {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let p = inp.join("MRN1000_DOE/IMG000.dcm");
        let mut o = dicom_object::open_file(&p).unwrap();
        o.put(DataElement::new(
            dicom_dictionary_std::tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from(marker_charset),
        ));
        o.write_to_file(&p).unwrap();
    }
    let out = tmp.path().join("out");
    let o = run(&[&inp, &"--out", &out, &"--burned-in", &"keep"], &[("CHESS_LOG", "trace")]);
    let streams = [o.stdout, o.stderr].concat();
    assert!(!streams.is_empty());
    let markers: Vec<String> = (0..41)
        .map(|i| format!("1.2.826.0.1.3680043.10.15.{i}"))
        .chain((0..7).map(|i| format!("PAT{i}")))
        .chain(["MRN10", "_DOE", "IMG0", "DOE^JANE", "MRKCHARSET", "1.2.3.4.", "1.2.3.5."].map(String::from))
        .collect();
    let text = String::from_utf8_lossy(&streams);
    assert!(
        text.contains("dicom_parser") && text.contains("its text is not shown"),
        "dicom-rs's charset warning is reduced to its kind:\n{text}"
    );
    for m in &markers {
        assert!(!text.contains(m.as_str()), "{m} on the streams:\n{text}");
    }
}

/// `--private-dir`: every private file (journal, run file, reject list,
/// key) goes there, 0700/0600, and nothing is left in the dataset; an
/// interrupted run resumes from the journal there, and refuses to go on
/// without it (it would start over).
#[cfg(unix)]
#[test]
fn private_dir_holds_every_private_file_and_resumption_finds_the_journal_there() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..48u32 {
        let mut s = Synth::new(&format!("1.2.826.0.1.3680043.10.17.{i}"), 500 + i);
        s.rows = 300;
        s.columns = 280;
        s.write(&inp.join(format!("{i:02}.dcm")));
    }
    std::fs::write(inp.join("notes.txt"), "x").unwrap(); // a reject row
    let out = tmp.path().join("out");
    let private = tmp.path().join("secure/chess-private");
    let command = |with_private: bool| {
        let mut c = common::chess_ingest();
        c.arg(&inp).arg("--out").arg(&out).args(["--shard-samples", "4", "--threads", "1", "--burned-in", "keep"]);
        if with_private {
            c.arg("--private-dir").arg(&private);
        }
        c
    };
    // Interrupted after the second shard is complete.
    let mut child = command(true).stdout(std::process::Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while !out.join("shards/shard-000001.tar").exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "finished before it could be killed");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(private.join("journal.jsonl").is_file() && private.join("run.json").is_file());
    // Without --private-dir the run's journal is not found: refused, not started over.
    let o = command(false).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass the --private-dir"), "{stderr}");
    let o = command(true).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("(resumed;"), "{stdout}");
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("Private files") && l.contains("chess-private")),
        "{stdout}"
    );
    assert!(!out.join("private").exists(), "nothing private in the dataset");
    let ds = chess_shards::Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.len(), 48);
    assert!(chess_shards::verify::verify(&ds, &|_| {}).unwrap().ok());
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700);
    let mut names = Vec::new();
    for e in std::fs::read_dir(&private).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", e.path());
        names.push(e.file_name().to_string_lossy().to_string());
    }
    names.sort();
    assert_eq!(names, ["journal.jsonl", "key", "rejected.parquet", "run.json"]);
    let rejected = strings(&private.join("rejected.parquet"), "source_path");
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].as_deref().unwrap().ends_with("notes.txt"));
    // Re-running finds the finished run through the same --private-dir.
    let o = command(true).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("already holds a finished dataset"));
}

/// The 8 orientations (4 turns, each mirrored) of a `rows × cols` image.
fn orientations(v: &[i32], rows: usize, cols: usize) -> Vec<(Vec<i32>, usize, usize)> {
    let turn = |v: &[i32], rows: usize, cols: usize| -> Vec<i32> {
        // 90° clockwise: (y, x) -> (x, rows - 1 - y)
        let mut out = vec![0; v.len()];
        for y in 0..rows {
            for x in 0..cols {
                out[x * rows + (rows - 1 - y)] = v[y * cols + x];
            }
        }
        out
    };
    let mirror =
        |v: &[i32], cols: usize| -> Vec<i32> { v.chunks(cols).flat_map(|r| r.iter().rev().copied()).collect() };
    let mut out = Vec::new();
    let (mut cur, mut r, mut c) = (v.to_vec(), rows, cols);
    for _ in 0..4 {
        out.push((mirror(&cur, c), r, c));
        out.push((cur.clone(), r, c));
        cur = turn(&cur, r, c);
        std::mem::swap(&mut r, &mut c);
    }
    out
}

/// The burned-in cascade's cheap first pass accepts clean real radiographs
/// (pydicom-data's chest CR RG1, WG04's hip and extremity CRs RG2/RG3, in
/// all 8 orientations): it hands less than 10 % of the image to the fine
/// pass, which finds no line there, so OCR is never called. The same pass
/// does hand on an image with a line of glyph-like rings drawn into it,
/// and (OCR off) the line is found.
#[test]
fn the_cheap_pass_accepts_clean_real_radiographs_without_ocr() {
    use chess_ingest::burned_in::{self, Device, Options};
    use chess_ingest::dicom::{self, Header};
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        common::pydicom_data_file("RG1_UNCR.dcm"),
        common::wg04_unc("RG2_UNC.zst", tmp.path()),
        common::wg04_unc("RG3_UNC.zst", tmp.path()),
    ];
    let opts = Options::default();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let obj = dicom::parse(&bytes).unwrap();
        let stored = dicom::decode(&obj, &Header::from_object(&obj)).unwrap();
        let (rows, cols) = (stored.rows as usize, stored.columns as usize);
        for (i, (v, r, c)) in orientations(&stored.values, rows, cols).into_iter().enumerate() {
            let f = burned_in::scan(&v, r, c, &Device::default(), &opts);
            assert_eq!((f.read, f.text.len()), (0, 0), "{} orientation {i}: {f:?}", path.display());
            // What goes on to the fine pass is a few small regions (thin anatomy at the ends of the range).
            assert!(f.region_pixels * 10 < r * c, "{} orientation {i}: {f:?}", path.display());
        }
    }
    // RG1 with a row of eight 12×20 rings (2-pixel strokes) at the top of its range.
    let bytes = std::fs::read(&files[0]).unwrap();
    let obj = dicom::parse(&bytes).unwrap();
    let mut stored = dicom::decode(&obj, &Header::from_object(&obj)).unwrap();
    let (rows, cols) = (stored.rows as usize, stored.columns as usize);
    let top = *stored.values.iter().max().unwrap();
    let (x0, y0) = (400, 900);
    for g in 0..8 {
        for y in y0..y0 + 20 {
            for x in x0 + g * 16..x0 + g * 16 + 12 {
                let edge = y < y0 + 2 || y >= y0 + 18 || x < x0 + g * 16 + 2 || x >= x0 + g * 16 + 10;
                if edge {
                    stored.values[y * cols + x] = top;
                }
            }
        }
    }
    let f = burned_in::scan(&stored.values, rows, cols, &Device::default(), &Options { ocr: false, ..opts });
    assert!(f.regions >= 1, "{f:?}");
    assert!(
        f.text.iter().any(|r| r.x <= x0 && r.x + r.w >= x0 + 7 * 16 + 12 && r.y <= y0 && r.y + r.h >= y0 + 20),
        "{f:?}"
    );
}

/// The sharpness test in front of OCR: four rings drawn with one-pixel
/// edges make a short line that is judged (OCR off: text); the same rings
/// with edges that ramp over four pixels (as bone and soft tissue do) are
/// dismissed unread.
#[test]
fn a_short_line_with_soft_edges_is_dismissed_unread() {
    use chess_ingest::burned_in::{self, Device, Options};
    use chess_ingest::dicom::{self, Header};
    let bytes = std::fs::read(common::pydicom_data_file("RG1_UNCR.dcm")).unwrap();
    let obj = dicom::parse(&bytes).unwrap();
    let clean = dicom::decode(&obj, &Header::from_object(&obj)).unwrap();
    let (rows, cols) = (clean.rows as usize, clean.columns as usize);
    let top = *clean.values.iter().max().unwrap();
    let (x0, y0) = (400, 900);
    // Rings 24×36 with 8-pixel strokes, 32 apart; each stroke pixel rises
    // from the background to the ink over `ramp` pixels from its nearer edge.
    let draw = |ramp: i64| {
        let mut v = clean.values.clone();
        for g in 0..4 {
            let gx = x0 + g * 32;
            for y in y0..y0 + 36 {
                for x in gx..gx + 24 {
                    let (dx, dy) = ((x - gx) as i64, (y - y0) as i64);
                    let outer = dx.min(23 - dx).min(dy).min(35 - dy) + 1;
                    let to_hole = (8 - dx).max(dx - 15).max(8 - dy).max(dy - 27);
                    let depth = outer.min(to_hole);
                    if depth <= 0 {
                        continue;
                    }
                    let level = (depth as f64 / ramp as f64).min(1.0);
                    let i = y * cols + x;
                    v[i] = (v[i] as f64 + (top - v[i]) as f64 * level).round() as i32;
                }
            }
        }
        v
    };
    let opts = Options { ocr: false, ..Options::default() };
    let over = |f: &burned_in::Finding| {
        f.text.iter().any(|r| r.x <= x0 + 24 && r.x + r.w >= x0 + 96 && r.y <= y0 + 36 && r.y + r.h >= y0)
    };
    let sharp = burned_in::scan(&draw(1), rows, cols, &Device::default(), &opts);
    assert!(over(&sharp), "sharp rings: {sharp:?}");
    let soft = burned_in::scan(&draw(4), rows, cols, &Device::default(), &opts);
    // Dropped by the first pass's sharpness test, or dismissed unread after the fine pass.
    assert!(!over(&soft) && soft.text.is_empty(), "soft rings: {soft:?}");
}
