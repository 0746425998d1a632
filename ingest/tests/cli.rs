//! End-to-end tests of the `chess-ingest` binary: accounting of every input
//! file, archives, bad input, resumption after `kill -9`, partitions; the
//! subcommands (`dicom` the default, a folder named `pairs`), the exit code
//! of each class of mistake (0 rejected files, 2 usage, 3 input, 4 output)
//! for the three front ends, and the library's progress events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{self, Synth};
use arrow_array::{Array, StringArray};

fn bin() -> Command {
    common::chess_ingest()
}

fn ingest(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let out = bin().args(args.iter().map(|a| a.as_ref())).output().unwrap();
    assert!(
        out.status.success(),
        "chess-ingest failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_strings(path: &Path, column: &str) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let a = b.column_by_name(column).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        out.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    out
}

/// (source path -> reason code) from rejected.parquet.
fn rejects(out: &Path) -> BTreeMap<String, String> {
    let p = out.join("private/rejected.parquet");
    read_strings(&p, "source_path").into_iter().zip(read_strings(&p, "reason_code")).collect()
}

fn keys(out: &Path) -> Vec<String> {
    read_strings(&out.join("manifest.parquet"), "key")
}

fn verify(out: &Path) {
    let ds = chess_shards::Dataset::open(out).unwrap();
    let report = chess_shards::verify::verify(&ds, &|_| {}).unwrap();
    assert!(report.ok(), "verify: {:?}", report.problems);
}

#[test]
fn every_input_file_is_a_sample_or_a_reject_row() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(inp.join("nested/deeper")).unwrap();
    let copy = |src: PathBuf, name: &str| std::fs::copy(src, inp.join(name)).unwrap();
    copy(common::wg04("RG1_JLSN.dcm"), "chest_jls.dcm"); // sample (.81)
    copy(common::wg04("RG1_JLSN.dcm"), "nested/same_sop_again"); // duplicate SOP, no extension
    copy(common::wg04("RG2_JPLL.dcm"), "hip.dcm"); // body_part
    copy(common::wg04("CT1_JPLL.dcm"), "nested/ct.dcm"); // modality
    copy(common::pydicom_test_file("dicomdirtests/DICOMDIR"), "DICOMDIR"); // dicomdir
    std::fs::write(inp.join("nested/deeper/notes.txt"), "not an image").unwrap(); // not_dicom
    let bytes = std::fs::read(common::wg04("RG1_JLSN.dcm")).unwrap();
    std::fs::write(inp.join("truncated.dcm"), &bytes[..bytes.len() / 3]).unwrap(); // truncated

    // Real chest CR (MONOCHROME1, uncompressed) inside a zip, the same image
    // as JPEG 2000 inside a tar.gz: one sample, one duplicate.
    {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::fs::File::create(inp.join("export.zip")).unwrap());
        z.start_file("study1/IMG0001", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&std::fs::read(common::pydicom_data_file("RG1_UNCR.dcm")).unwrap()).unwrap();
        z.start_file("study1/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"hello").unwrap();
        z.finish().unwrap();
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(inp.join("more.tgz")).unwrap(),
            flate2::Compression::fast(),
        );
        let mut t = tar::Builder::new(gz);
        t.append_path_with_name(common::pydicom_data_file("RG1_J2KR.dcm"), "x/rg1_j2k").unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    let out = tmp.path().join("out");
    let o = ingest(&[&inp, &"--out", &out, &"--threads", &"2"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Created a new secret key"), "{stdout}");

    let rej = rejects(&out);
    let keys = keys(&out);
    let sources = 10; // 7 plain files + 2 zip members + 1 tar member
    assert_eq!(keys.len() + rej.len(), sources, "samples {keys:?} rejects {rej:?}");
    assert_eq!(keys.len(), 2, "{rej:?}");
    let by_name = |suffix: &str| rej.iter().find(|(s, _)| s.ends_with(suffix)).map(|(_, r)| r.as_str());
    assert_eq!(by_name("hip.dcm"), Some("body_part"));
    assert_eq!(by_name("ct.dcm"), Some("modality"));
    assert_eq!(by_name("DICOMDIR"), Some("dicomdir"));
    assert_eq!(by_name("notes.txt"), Some("not_dicom"));
    assert_eq!(by_name("export.zip!/study1/readme.txt"), Some("not_dicom"));
    assert!(
        matches!(by_name("truncated.dcm"), Some("parse_error" | "pixel_data_truncated" | "decode_error")),
        "{rej:?}"
    );
    let dup_sop = rej.values().filter(|r| *r == "duplicate_sop_instance").count();
    let dup_any = rej.values().filter(|r| r.starts_with("duplicate_")).count();
    assert_eq!((dup_sop >= 1, dup_any), (true, 2), "{rej:?}");
    // Rejects name their sources, archive members as archive!/member.
    assert!(rej.keys().any(|s| s.contains("export.zip!/study1/")));

    verify(&out);
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
    let summary = &info["provenance"]["summary"];
    assert_eq!(summary["files"], sources);
    assert_eq!(summary["samples"], 2);
    assert_eq!(summary["rejected"]["not_dicom"], 2);
    assert_eq!(info["provenance"]["deidentification"]["PatientIdentityRemoved"], "YES");
    assert_eq!(info["image_size"], serde_json::json!([512, 512]));
    // Key file made with mode 0600 under private/.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("private/key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Running the same command again is a no-op success.
    let again = ingest(&[&inp, &"--out", &out]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already holds a finished dataset"));
    // With other options it is a usage error naming both, never a silent success over the old dataset.
    let other = bin().arg(&inp).arg("--out").arg(&out).args(["--size", "256"]).output().unwrap();
    assert_eq!(other.status.code(), Some(2), "{}", String::from_utf8_lossy(&other.stderr));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("finished DICOM import made with different options") && err.contains("256"), "{err}");
    // Another importer does not take it for its own: exit 4, as chess-shards for an existing output.
    let csv = tmp.path().join("pairs.csv");
    std::fs::write(&csv, "source,target\n").unwrap();
    let pairs = bin().arg("pairs").arg(&csv).arg("--out").arg(&out).output().unwrap();
    assert_eq!(pairs.status.code(), Some(4), "{}", String::from_utf8_lossy(&pairs.stderr));
    assert!(String::from_utf8_lossy(&pairs.stderr).contains("did not make"));
}

#[test]
fn bad_input_is_rejected_without_panics_or_huge_allocations() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let mut huge = Synth::new("1.2.9.1", 1);
    huge.header_dims = Some((100_000, 100_000));
    huge.write(&inp.join("huge.dcm"));
    let mut empty = Synth::new("1.2.9.2", 2);
    empty.pixel_data = Some(Vec::new());
    empty.write(&inp.join("zero_length.dcm"));
    let mut missing = Synth::new("1.2.9.3", 3);
    missing.no_pixel_data = true;
    missing.write(&inp.join("missing.dcm"));
    let mut short = Synth::new("1.2.9.4", 4);
    short.pixel_data = Some(vec![0u8; 100]);
    short.write(&inp.join("short.dcm"));
    Synth::new("1.2.9.5", 5).write(&inp.join("good.dcm"));
    let good = std::fs::read(inp.join("good.dcm")).unwrap();
    std::fs::write(inp.join("cut_in_header.dcm"), &good[..200]).unwrap();
    std::fs::write(inp.join("cut_in_pixels.dcm"), &good[..good.len() - 1000]).unwrap();
    std::fs::write(inp.join("empty_file"), b"").unwrap();
    std::fs::write(inp.join("random.bin"), (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    let mut dicm_garbage = vec![0u8; 128];
    dicm_garbage.extend_from_slice(b"DICM");
    dicm_garbage.extend((0..3000u32).map(|i| (i * 31 % 256) as u8));
    std::fs::write(inp.join("dicm_garbage.dcm"), dicm_garbage).unwrap();
    // JPEG extended 12-bit: decoded (libjpeg-turbo, issue 14), a sample.
    let mut jply = std::fs::read(common::wg04("RG2_JPLY.dcm")).unwrap();
    // Make it a chest so that it reaches the decoder: BodyPartExamined
    // (0018,0015) CS "HIP " becomes "LUNG".
    let pos = jply.windows(12).position(|w| w == b"\x18\x00\x15\x00CS\x04\x00HIP ").expect("BodyPartExamined HIP");
    jply[pos + 8..pos + 12].copy_from_slice(b"LUNG");
    std::fs::write(inp.join("jply.dcm"), &jply).unwrap();

    let out = tmp.path().join("out");
    let started = Instant::now();
    // Decoding is what this test is about: no burned-in verdicts.
    ingest(&[&inp, &"--out", &out, &"--quiet", &"--burned-in", &"keep"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    let rej = rejects(&out);
    let reason = |name: &str| rej.iter().find(|(s, _)| s.ends_with(name)).map(|(_, r)| r.clone()).unwrap_or_default();
    assert_eq!(keys(&out).len(), 2, "{rej:?}");
    assert_eq!(reason("huge.dcm"), "bad_dimensions");
    assert_eq!(reason("zero_length.dcm"), "no_pixel_data");
    assert_eq!(reason("missing.dcm"), "no_pixel_data");
    assert_eq!(reason("short.dcm"), "pixel_data_truncated");
    assert_eq!(reason("empty_file"), "not_dicom");
    assert_eq!(reason("random.bin"), "not_dicom");
    assert_eq!(reason("dicm_garbage.dcm"), "parse_error");
    assert!(matches!(reason("cut_in_header.dcm").as_str(), "parse_error"), "{rej:?}");
    assert!(matches!(reason("cut_in_pixels.dcm").as_str(), "parse_error" | "pixel_data_truncated"), "{rej:?}");
    assert_eq!(reason("jply.dcm"), "", "{rej:?}");
    assert_eq!(rej.len(), 9);
}

#[test]
fn kill_dash_nine_then_rerun_completes_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let n = 90;
    for i in 0..n {
        let mut s = Synth::new(&format!("1.2.826.7.{i}"), i);
        s.rows = 320;
        s.columns = 300;
        s.write(&inp.join(format!("{i:03}.dcm")));
    }
    std::fs::write(inp.join("junk.txt"), "x").unwrap();
    let out = tmp.path().join("out");
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let args = |c: &mut Command| {
        c.arg(&inp).arg("--out").arg(&out).arg("--key-file").arg(&key).args([
            "--shard-samples",
            "8",
            "--threads",
            "2",
            "--quiet",
            // The synthetic images' wrapped ramps are salt-and-pepper bands
            // the text detector flags; this test is about resumption.
            "--burned-in",
            "keep",
        ]);
    };
    let shard = |i: u32| out.join(format!("shards/shard-{i:06}.tar"));
    let mut kept: Vec<(PathBuf, std::time::SystemTime)> = Vec::new();
    // Kill right after the 2nd, then the 5th shard is complete.
    for wait_for in [1, 4] {
        let mut c = bin();
        args(&mut c);
        let mut child = c.spawn().unwrap();
        let t = Instant::now();
        while !shard(wait_for).exists() {
            assert!(t.elapsed() < Duration::from_secs(120), "no progress");
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "finished before it could be killed (waiting for shard {wait_for}): {st}; {:?}",
                    std::fs::read_dir(out.join("shards"))
                        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect::<Vec<_>>())
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(!out.join("dataset.json").exists());
        kept = (0..=wait_for)
            .filter(|&i| shard(i).exists())
            .map(|i| (shard(i), std::fs::metadata(shard(i)).unwrap().modified().unwrap()))
            .collect();
    }
    let mut c = bin();
    args(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Finished shards were not redone.
    for (p, mtime) in &kept {
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *mtime, "{} was rewritten", p.display());
    }
    let ks = keys(&out);
    let unique: BTreeSet<&String> = ks.iter().collect();
    assert_eq!(ks.len(), n as usize, "every sample present");
    assert_eq!(unique.len(), ks.len(), "no duplicates");
    // Same keys as an uninterrupted run.
    let clean = tmp.path().join("clean");
    ingest(&[&inp, &"--out", &clean, &"--key-file", &key, &"--quiet", &"--burned-in", &"keep"]);
    let mut a = keys(&clean);
    a.sort();
    let mut b = ks.clone();
    b.sort();
    assert_eq!(a, b);
    let rej = rejects(&out);
    assert_eq!(rej.len(), 1, "{rej:?}");
    verify(&out);
}

#[test]
fn partitions_are_disjoint_and_cover_the_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..24 {
        Synth::new(&format!("1.2.826.8.{i}"), 100 + i).write(&inp.join(format!("{i:02}.dcm")));
    }
    let out = tmp.path().join("out");
    let key = tmp.path().join("key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    ingest(&[&inp, &"--out", &out, &"--key-file", &key, &"--partition", &"0/3", &"--quiet", &"--size", &"64"]);
    // The others through the Slurm and Kubernetes variables.
    let o = bin()
        .args([
            inp.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--quiet".as_ref(),
            "--size".as_ref(),
            "64".as_ref(),
        ])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args([
            inp.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--quiet".as_ref(),
            "--size".as_ref(),
            "64".as_ref(),
        ])
        .env("JOB_COMPLETION_INDEX", "2")
        .env("JOB_COMPLETIONS", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut all = Vec::new();
    let parts: Vec<PathBuf> = (0..3).map(|i| out.join(format!("part-{i:05}-of-00003"))).collect();
    for (i, part) in parts.iter().enumerate() {
        let part = part.clone();
        verify(&part);
        let k = keys(&part);
        assert!(!k.is_empty() && k.len() < 24, "partition {i}: {}", k.len());
        all.extend(k);
    }
    let whole = tmp.path().join("whole");
    ingest(&[&inp, &"--out", &whole, &"--key-file", &key, &"--quiet", &"--size", &"64"]);
    let mut expected = keys(&whole);
    expected.sort();
    all.sort();
    assert_eq!(all, expected);
    // chess-shards merge joins the partitions into one dataset.
    let merged = tmp.path().join("merged");
    chess_shards::ops::merge(&parts, &merged, "shard").unwrap();
    let mut m = keys(&merged);
    m.sort();
    assert_eq!(m, expected);
    verify(&merged);
}

#[test]
fn usage_and_fatal_errors_exit_non_zero_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin().arg(tmp.path().join("nope")).arg("--out").arg(tmp.path().join("o")).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    let o = bin().args(["x", "--partition", "3/3"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let short = tmp.path().join("short.key");
    std::fs::write(&short, b"abc").unwrap();
    let o =
        bin().arg(tmp.path()).arg("--out").arg(tmp.path().join("o2")).arg("--key-file").arg(&short).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 32"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn help_lists_the_subcommands_and_the_exit_codes() {
    let o = bin().arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    let commands = &help[help.find("Commands:").expect("a Commands section")..];
    for (name, says) in [("dicom", "DICOM exports"), ("chexpert", "CheXpert"), ("pairs", "source,target")] {
        let line = commands.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{help}"));
        assert!(line.contains(says), "{line}");
    }
    assert!(help.contains(chess_cli::EXIT_CODES_HELP), "{help}");
    for sub in ["dicom", "chexpert", "pairs"] {
        let o = bin().args([sub, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains(&format!("Usage: chess-ingest {sub}")), "{help}");
        assert!(help.contains(chess_cli::EXIT_CODES_HELP), "{sub}: {help}");
    }
}

#[test]
fn a_folder_named_pairs_is_dicom_input_with_a_path_or_the_dicom_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs");
    std::fs::create_dir(&pairs).unwrap();
    for i in 0..3 {
        Synth::new(&format!("1.2.826.0.1.3680043.10.9.{i}"), i).write(&pairs.join(format!("{i}.dcm")));
    }
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let run = |args: &[&str], out: &str| {
        let o = bin().current_dir(tmp.path()).args(args).args(["--out", out, "--key-file", "key", "-q"]).output();
        let o = o.unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let mut k = keys(&tmp.path().join(out));
        k.sort();
        k
    };
    let by_path = run(&["./pairs"], "a");
    assert_eq!(by_path.len(), 3);
    assert_eq!(run(&["dicom", "pairs"], "b"), by_path);
    // `pairs` alone is the subcommand: a folder is not a pairs CSV.
    let o = bin().current_dir(tmp.path()).args(["pairs", "pairs", "--out", "c", "-q"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An output path no one can create, even as root: below a regular file.
fn unwritable(tmp: &Path) -> PathBuf {
    let file = tmp.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    file.join("out")
}

#[test]
fn exit_codes_follow_the_class_of_the_mistake() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    Synth::new("1.2.826.0.1.3680043.10.9.100", 1).write(&inp.join("a.dcm"));
    std::fs::write(inp.join("junk.dcm"), b"not dicom").unwrap();
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let code = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let o = bin().args(args.iter().map(|a| a.as_ref())).arg("-q").output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let out = |name: &str| tmp.path().join(name);
    // 0: a rejected file is listed, not a failure.
    assert_eq!(code(&[&inp, &"--out", &out("ok"), &"--key-file", &key]).0, Some(0));
    assert_eq!(rejects(&out("ok")).len(), 1);
    // 2: a value out of range, a bad combination, an unsupported --out.
    for (args, says) in [
        (vec!["--size", "0"], "--size 0"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--shard-samples", "0"], "--shard-samples"),
        (vec!["--labels", "l.csv"], "--label-key"),
    ] {
        let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&inp, &"--out"];
        let o = out("usage");
        a.push(&o);
        a.extend(args.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
        let (c, err) = code(&a);
        assert_eq!(c, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (c, err) = code(&[&inp, &"--out", &"ftp://host/x"]);
    assert_eq!(c, Some(2), "{err}");
    // 3: a missing input, an unreadable labels CSV, a key file that is no key.
    assert_eq!(code(&[&tmp.path().join("absent"), &"--out", &out("in3")]).0, Some(3));
    let (c, err) =
        code(&[&inp, &"--out", &out("in3"), &"--labels", &tmp.path().join("absent.csv"), &"--label-key", &"PatientID"]);
    assert_eq!(c, Some(3), "{err}");
    assert!(err.contains("absent.csv"), "{err}");
    let short = tmp.path().join("short.key");
    std::fs::write(&short, b"abc").unwrap();
    assert_eq!(code(&[&inp, &"--out", &out("in3"), &"--key-file", &short]).0, Some(3));
    // 4: the output cannot be written (the default key under it, or the dataset itself).
    let bad = unwritable(tmp.path());
    let (c, err) = code(&[&inp, &"--out", &bad]);
    assert_eq!(c, Some(4), "{err}");
    let (c, err) = code(&[&inp, &"--out", &bad, &"--key-file", &key]);
    assert_eq!(c, Some(4), "{err}");
    // The same classes from the other front ends.
    let csv = tmp.path().join("pairs.csv");
    std::fs::write(&csv, "source,target\nin/a.dcm,in/a.dcm\n").unwrap();
    let (c, err) = code(&[&"pairs", &csv, &"--out", &bad, &"--key-file", &key]);
    assert_eq!(c, Some(4), "{err}");
    let (c, err) = code(&[&"pairs", &tmp.path().join("absent.csv"), &"--out", &out("p3")]);
    assert_eq!(c, Some(3), "{err}");
    let (c, err) = code(&[&"pairs", &csv, &"--out", &out("p2"), &"--size", &"9000"]);
    assert_eq!(c, Some(2), "{err}");
    let (c, err) = code(&[&"chexpert", &inp, &"--out", &out("c3")]);
    assert_eq!(c, Some(3), "a folder without train.csv: {err}");
    let release = tmp.path().join("CheXpert-v1.0-small");
    std::fs::create_dir(&release).unwrap();
    for csv in ["train.csv", "valid.csv"] {
        std::fs::write(release.join(csv), format!("{}\n", chess_ingest::chexpert::HEADER.join(","))).unwrap();
    }
    let (c, err) = code(&[&"chexpert", &release, &"--out", &bad]);
    assert_eq!(c, Some(4), "{err}");
    let (c, err) = code(&[&"chexpert", &release, &"--out", &out("c2"), &"--clip-percentile", &"0"]);
    assert_eq!(c, Some(2), "{err}");
}

#[test]
fn the_library_reports_progress_through_its_callback() {
    use chess_ingest::progress::ProgressEvent;
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    for i in 0..2 {
        Synth::new(&format!("1.2.826.0.1.3680043.10.9.20{i}"), 20 + i).write(&inp.join(format!("{i}.dcm")));
    }
    std::fs::write(inp.join("junk.dcm"), b"not dicom").unwrap();
    {
        // An archive: two members replace the one file counted at first.
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::fs::File::create(inp.join("more.zip")).unwrap());
        for i in 0..2 {
            let member = tmp.path().join(format!("m{i}.dcm"));
            Synth::new(&format!("1.2.826.0.1.3680043.10.9.21{i}"), 30 + i).write(&member);
            z.start_file(format!("m{i}"), zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(&std::fs::read(&member).unwrap()).unwrap();
        }
        z.finish().unwrap();
    }
    let mut cfg = chess_ingest::run::Config::new(vec![inp], tmp.path().join("out"));
    let key = tmp.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    cfg.key_file = Some(key);
    cfg.threads = 2;
    let events = std::sync::Mutex::new(Vec::new());
    let record = |e: ProgressEvent| events.lock().unwrap().push(e);
    let summary = chess_ingest::run::run(&cfg, &record).unwrap();
    let events = events.into_inner().unwrap();
    assert_eq!(events.first(), Some(&ProgressEvent::Total(4)), "{events:?}");
    assert_eq!(events.last(), Some(&ProgressEvent::Finished), "{events:?}");
    let sum = |f: fn(&ProgressEvent) -> u64| events.iter().map(f).sum::<u64>();
    let grew = sum(|e| if let ProgressEvent::Grew(n) = e { *n } else { 0 });
    let advanced = sum(|e| if let ProgressEvent::Advanced(n) = e { *n } else { 0 });
    assert_eq!((grew, advanced), (1, 5), "every item is advanced once: {events:?}");
    let last_counts = events.iter().rev().find(|e| matches!(e, ProgressEvent::Counts { .. }));
    assert_eq!(last_counts, Some(&ProgressEvent::Counts { samples: 4, rejected: 1 }));
    assert_eq!((summary.files, summary.samples), (5, 4));
}
