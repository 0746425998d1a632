//! Data-parallel MoCo on c10d with Gloo, on the CPU, in several processes:
//! two ranks equal one process that sees the same samples the same way and
//! agree with PyTorch's DDP MoCo, a `torchrun` launch (and resume) writes
//! one checkpoint stream, srun's variables work, and a killed rank makes
//! its peer fail quickly instead of hanging.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::PixelDtype;
use chess_train::io::weights;
use chess_train::models::resnet::Arch;
use chess_train::runtime::dist::{BackendChoice, Dist, DistEnv};
use chess_train::runtime::optim::Sgd;
use chess_train::tasks::pretrain::moco::{normalize, Moco, MocoConfig};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// Per-rank batch b, ranks, steps of the equivalence test.
const B: i64 = 4;
const WORLD: i64 = 2;
const STEPS: u64 = 3;
const SIZE: i64 = 32;
/// Steps of the comparison with PyTorch's DDP MoCo.
const PEER_STEPS: u64 = 2;

fn moco_config() -> MocoConfig {
    // m = 0.9 so that the key encoder visibly follows; K a multiple of 2b.
    MocoConfig {
        arch: Arch::Resnet18,
        dim: 16,
        queue: 32,
        momentum: 0.9,
        temperature: 0.2,
        mlp: true,
        shuffle_bn: true,
    }
}

/// The global batch of step `s` (query and key inputs `[2b, 1, S, S]`), the same in every process.
fn global_batch(step: u64) -> (Tensor, Tensor) {
    tch::manual_seed(1000 + step as i64);
    let q = Tensor::randn([WORLD * B, 1, SIZE, SIZE], (Kind::Float, Device::Cpu));
    let k = Tensor::randn([WORLD * B, 1, SIZE, SIZE], (Kind::Float, Device::Cpu));
    (q, k)
}

/// The generator seed before step `s` on rank 0 (it draws the shuffle).
fn step_seed(step: u64) -> i64 {
    7 + step as i64
}

/// libtorch's generator is global: the tests that seed it in this process take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn trained_state(moco: &Moco) -> Vec<(String, Tensor)> {
    let mut t: Vec<(String, Tensor)> =
        moco.param_names.iter().zip(&moco.q_params).map(|(n, p)| (format!("q.{n}"), p.shallow_clone())).collect();
    t.extend(moco.param_names.iter().zip(&moco.k_params).map(|(n, p)| (format!("k.{n}"), p.shallow_clone())));
    t.push(("queue".into(), moco.queue.shallow_clone()));
    t
}

/// The body of one rank, run in a child process of
/// `two_ranks_equal_one_process_with_the_split_batch` (environment
/// `CHESS_DIST_TEST_OUT`); outside that it has nothing to do.
#[test]
#[ignore = "a worker process of two_ranks_equal_one_process_with_the_split_batch"]
fn equivalence_worker() {
    let Some(out) = std::env::var_os("CHESS_DIST_TEST_OUT").map(PathBuf::from) else { return };
    tch::set_num_threads(1);
    let env = DistEnv::from_env().unwrap().expect("RANK/WORLD_SIZE set by the parent test");
    let dist = Arc::new(Dist::init(&env, Device::Cpu, BackendChoice::Gloo, Duration::from_secs(60)).unwrap());
    tch::manual_seed(0);
    let mut moco = Moco::new(moco_config(), Device::Cpu, 0.9, 1e-4).unwrap();
    dist.broadcast_vars(&moco.vs_q).unwrap();
    dist.broadcast_vars(&moco.vs_k).unwrap();
    dist.broadcast_all(std::slice::from_ref(&moco.queue), 0).unwrap();
    moco.dist = Some(dist.clone());
    let r = env.rank as i64;
    let steps: u64 = std::env::var("CHESS_DIST_TEST_STEPS").map_or(STEPS, |v| v.parse().unwrap());
    for step in 0..steps {
        let (q, k) = global_batch(step);
        // Rank 0's generator draws the shuffle; rank 1's is seeded apart (unused).
        tch::manual_seed(step_seed(step) + 100 * r);
        moco.step(&q.narrow(0, r * B, B), &k.narrow(0, r * B, B), 0.03).unwrap();
    }
    weights::write_atomic(&out.join(format!("rank{}.safetensors", env.rank)), &trained_state(&moco)).unwrap();
}

/// Runs `equivalence_worker` as ranks 0 and 1 and reads what each wrote.
fn run_equivalence_workers(dir: &Path, steps: u64) -> Vec<std::collections::HashMap<String, Tensor>> {
    let port = free_port().to_string();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORLD)
        .map(|r| {
            Command::new(&exe)
                .args(["--exact", "dist::equivalence_worker", "--ignored", "--nocapture", "--test-threads=1"])
                .env("CHESS_DIST_TEST_OUT", dir)
                .env("CHESS_DIST_TEST_STEPS", steps.to_string())
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", WORLD.to_string())
                .env("LOCAL_RANK", r.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (r, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rank {r} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (0..WORLD).map(|r| weights::read(&dir.join(format!("rank{r}.safetensors"))).unwrap()).collect()
}

/// One process doing exactly what two ranks of b do together: the query
/// encoder's BN sees each rank's b samples apart, the key encoder's BN sees
/// each half of the shuffled 2b batch apart (shuffle-BN across ranks), the
/// loss is the mean over 2b (= the mean of the ranks' means, which is what
/// averaging gradients computes), and all 2b keys are enqueued.
fn emulate_two_ranks(moco: &mut Moco, im_q: &Tensor, im_k: &Tensor, lr: f64) {
    let n = im_q.size()[0];
    let b = n / WORLD;
    let q = Tensor::cat(
        &(0..WORLD).map(|r| normalize(&moco.enc_q.forward_t(&im_q.narrow(0, r * b, b), true), 1)).collect::<Vec<_>>(),
        0,
    );
    moco.momentum_update();
    let k = tch::no_grad(|| {
        let idx = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let unshuffle = idx.argsort(0, false);
        let x = im_k.index_select(0, &idx);
        let parts: Vec<Tensor> =
            (0..WORLD).map(|r| normalize(&moco.enc_k.forward_t(&x.narrow(0, r * b, b), true), 1)).collect();
        Tensor::cat(&parts, 0).index_select(0, &unshuffle)
    });
    let logits = moco.logits(&q, &k);
    let loss = logits.cross_entropy_for_logits(&Tensor::zeros([n], (Kind::Int64, Device::Cpu)));
    Sgd::zero_grad(&moco.q_params);
    loss.backward();
    moco.sgd.step(&moco.q_params, lr);
    moco.enqueue(&k).unwrap();
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// (a) Two Gloo ranks with batch b each equal one process with batch 2b
/// that splits BN the way the ranks do (train-mode BN, shuffle-BN across
/// ranks emulated exactly): query and key weights and the queue agree after
/// three steps. A plain 2b step (BN over all 2b) does not, which shows the
/// comparison can fail.
#[test]
fn two_ranks_equal_one_process_with_the_split_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = run_equivalence_workers(dir.path(), STEPS);

    let _g = rng();
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let mut single = Moco::new(moco_config(), Device::Cpu, 0.9, 1e-4).unwrap();
    tch::manual_seed(0);
    let mut plain = Moco::new(moco_config(), Device::Cpu, 0.9, 1e-4).unwrap();
    let start: Vec<(String, Tensor)> = trained_state(&single).into_iter().map(|(n, t)| (n, t.copy())).collect();
    for step in 0..STEPS {
        let (q, k) = global_batch(step);
        tch::manual_seed(step_seed(step));
        emulate_two_ranks(&mut single, &q, &k, 0.03);
        tch::manual_seed(step_seed(step));
        plain.step(&q, &k, 0.03).unwrap();
    }
    let (mut worst, mut worst_plain, mut replicas) = (0f64, 0f64, 0f64);
    let plain_state: std::collections::HashMap<String, Tensor> = trained_state(&plain).into_iter().collect();
    for (name, t) in trained_state(&single) {
        let d = max_abs_diff(&t, &ranks[0][&name]);
        assert!(d <= 1e-4, "{name}: two ranks vs one process differ by {d}");
        worst = worst.max(d);
        replicas = replicas.max(max_abs_diff(&ranks[0][&name], &ranks[1][&name]));
        worst_plain = worst_plain.max(max_abs_diff(&plain_state[&name], &ranks[0][&name]));
    }
    assert!(replicas <= 1e-6, "the ranks' replicas drifted apart by {replicas}");
    let moved = max_abs_diff(&start[0].1, &ranks[0][&start[0].0]);
    assert!(moved > 1e-5, "the weights did not move ({moved})");
    assert!(
        worst_plain > 1e-3,
        "BN over all 2b should differ from the split ({worst_plain}): the test would not see a wrong split"
    );
    eprintln!("max |Δ| two ranks vs emulation {worst:.2e}; replicas {replicas:.2e}; vs plain 2b BN {worst_plain:.2e}");
}

/// Agreement with PyTorch: upstream's distributed MoCo (`_batch_shuffle_ddp`,
/// `concat_all_gather`) under `DistributedDataParallel` on torch.distributed's
/// Gloo, two processes (`scripts/python/moco_ddp_reference.py`), from the
/// same weights, queue and batches: rank 0's weights and queue after two
/// steps agree with our two ranks' within 5e-5 (a wrong shuffle or split
/// differs by ≈ 1). After one step the difference is float noise (≈ 4e-7);
/// BN over 4 samples at 1×1 in layer4 amplifies it step after step: ≈ 7e-6
/// after two, ≈ 1e-4 after three.
#[test]
fn two_ranks_match_pytorch_ddp_moco() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = run_equivalence_workers(dir.path(), PEER_STEPS);
    // The workers' starting point, rebuilt the same way (seed 0).
    let _g = rng();
    tch::manual_seed(0);
    let moco = Moco::new(moco_config(), Device::Cpu, 0.9, 1e-4).unwrap();
    let mut init = weights::named(&moco.vs_q, "q.");
    init.extend(weights::named(&moco.vs_k, "k."));
    init.push(("queue".into(), moco.queue.shallow_clone()));
    for step in 0..PEER_STEPS {
        let (q, k) = global_batch(step);
        init.push((format!("im_q.{step}"), q));
        init.push((format!("im_k.{step}"), k));
    }
    let init_file = dir.path().join("init.safetensors");
    weights::write_atomic(&init_file, &init).unwrap();
    let ddp_file = dir.path().join("ddp.safetensors");
    let script = common::repo_root().join("scripts/python/moco_ddp_reference.py");
    let out = Command::new(common::python())
        .arg(&script)
        .args([
            "--init",
            init_file.to_str().unwrap(),
            "--out",
            ddp_file.to_str().unwrap(),
            "--port",
            &free_port().to_string(),
        ])
        .args(["--world", &WORLD.to_string(), "--batch", &B.to_string(), "--steps", &PEER_STEPS.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "moco_ddp_reference.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let ddp = weights::read(&ddp_file).unwrap();
    assert_eq!(ddp.len(), ranks[0].len(), "same tensors both ways");
    let mut worst = (0f64, String::new());
    for (name, t) in &ddp {
        let d = max_abs_diff(t, &ranks[0][name]);
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    assert!(worst.0 <= 5e-5, "{}: ours vs PyTorch DDP differ by {}", worst.1, worst.0);
    let moved = max_abs_diff(&ddp["q.conv1.weight"], &init.iter().find(|(n, _)| n == "q.conv1.weight").unwrap().1);
    assert!(moved > 1e-5, "PyTorch's weights did not move ({moved})");
    eprintln!("ours vs PyTorch DDP MoCo: max |Δ| {:.2e} ({})", worst.0, worst.1);
}

fn torchrun() -> PathBuf {
    let t = common::python().parent().unwrap().join("torchrun");
    assert!(t.exists(), "{} not found: run scripts/setup.sh", t.display());
    t
}

fn step_jsons(run: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-") && n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

fn run_torchrun(data: &Path, run: &Path, extra: &[&str]) -> String {
    let port = free_port().to_string();
    let out = Command::new(torchrun())
        .args(["--no-python", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", &port])
        .arg(env!("CARGO_BIN_EXE_chess-train"))
        .args(["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap()])
        .args([
            "--arch",
            "resnet18",
            "--size",
            "32",
            "--batch-size",
            "4",
            "--queue",
            "32",
            "--device",
            "auto",
            "--threads",
            "1",
        ])
        .args(["--dist-timeout", "60"])
        .args(extra)
        .env("CHESS_LOG", "warn")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "torchrun failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// (b) `torchrun --no-python --nproc-per-node 2 chess-train pretrain …`
/// finishes with one checkpoint, one metrics stream and one summary (rank
/// 0's); both ranks resume from it under torchrun again.
#[test]
fn torchrun_launch_writes_one_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    common::demo_dataset(&data, 32, 48, PixelDtype::Uint8);
    let stdout = run_torchrun(&data, &run, &["--steps", "3", "--no-augment"]);
    assert_eq!(stdout.matches(" steps on ").count(), 1, "one summary, from rank 0:\n{stdout}");
    assert_eq!(step_jsons(&run), vec!["step-00000003.json"]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3], "one metrics line per step, from rank 0 only");

    run_torchrun(&data, &run, &["--resume", "--steps", "5", "--no-augment"]);
    // 16 images per rank make 4 steps an epoch: the epoch end (4) and the last step (5).
    assert_eq!(step_jsons(&run), vec!["step-00000004.json", "step-00000005.json"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoints/latest.json")).unwrap()).unwrap();
    assert_eq!(state["step"].as_u64(), Some(5));
    // 2 ranks × 4 images per step enqueue 8 keys: after 5 steps the pointer is at 40 mod 32.
    assert_eq!(state["queue_ptr"].as_i64(), Some(8));
}

/// How a test takes rank 1 out mid-run.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// SIGKILL: its sockets close.
    Kill,
    /// SIGSTOP: alive but silent, so only the timeout can end rank 0's wait.
    Freeze,
}

/// Starts two ranks, takes rank 1 out once training runs, and returns how
/// rank 0 ended: (exit code, stderr, seconds from the failure to its exit).
fn survivor_after(failure: Failure, timeout_s: u64) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    common::demo_dataset(&data, 32, 48, PixelDtype::Uint8);
    let port = free_port().to_string();
    let mut children: Vec<_> = (0..2)
        .map(|r| {
            Command::new(env!("CARGO_BIN_EXE_chess-train"))
                .args(["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"])
                .args([
                    "--arch",
                    "resnet18",
                    "--size",
                    "32",
                    "--batch-size",
                    "4",
                    "--queue",
                    "32",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                ])
                .args([
                    "--steps",
                    "100000",
                    "--epochs",
                    "100000",
                    "--no-augment",
                    "--dist-timeout",
                    &timeout_s.to_string(),
                ])
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", "2")
                .env("LOCAL_RANK", r.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("CHESS_LOG", "chess_train=info")
                .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Wait until rank 1 is training (the group is up), then give it a few steps.
    let rank1_err = BufReader::new(children[1].stderr.take().unwrap());
    let mut ready = false;
    for line in rank1_err.lines() {
        if line.unwrap().contains("process group ready") {
            ready = true;
            break;
        }
    }
    assert!(ready, "rank 1 never joined the group");
    std::thread::sleep(Duration::from_millis(1500));
    let pid = children[1].id().to_string();
    match failure {
        Failure::Kill => {
            children[1].kill().unwrap();
            children[1].wait().unwrap();
        }
        Failure::Freeze => assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success()),
    }
    let failed_at = Instant::now();
    let mut survivor = children.remove(0);
    let status = loop {
        if let Some(s) = survivor.try_wait().unwrap() {
            break s;
        }
        if failed_at.elapsed() > Duration::from_secs(timeout_s + 30) {
            survivor.kill().unwrap();
            let _ = children[0].kill();
            panic!("rank 0 still running {:?} after its peer failed ({failure:?})", failed_at.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let waited = failed_at.elapsed();
    // A frozen rank 1 is ended here (SIGKILL works on a stopped process).
    let _ = children[0].kill();
    let _ = children[0].wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut survivor.stderr.take().unwrap(), &mut err).unwrap();
    eprintln!("{failure:?}: rank 0 ended {waited:?} later: {}", err.lines().last().unwrap_or(""));
    (status.code(), err, waited)
}

/// (c) A rank killed with SIGKILL mid-run: the other fails with a
/// distributed error well within its timeout instead of hanging.
#[test]
fn a_killed_rank_makes_the_other_fail_not_hang() {
    let (code, err, _) = survivor_after(Failure::Kill, 20);
    assert_eq!(code, Some(5), "runtime failure exit code; stderr:\n{err}");
    assert!(err.contains("distributed:"), "no distributed error on stderr:\n{err}");
}

/// A rank that stops answering (SIGSTOP, its sockets open): the other
/// fails once the collective timeout has passed, not before, and not never.
#[test]
fn a_frozen_rank_makes_the_other_fail_after_the_timeout() {
    let timeout_s = 4;
    let (code, err, waited) = survivor_after(Failure::Freeze, timeout_s);
    assert_eq!(code, Some(5), "runtime failure exit code; stderr:\n{err}");
    assert!(err.contains("distributed:"), "no distributed error on stderr:\n{err}");
    assert!(
        waited >= Duration::from_secs(timeout_s) - Duration::from_millis(1500),
        "failed before the timeout: {waited:?}\n{err}"
    );
}

/// A rank whose peers never come: joining fails after the timeout, naming the store.
#[test]
fn a_missing_peer_times_out_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    common::demo_dataset(&data, 8, 32, PixelDtype::Uint8);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_chess-train"))
        .args([
            "pretrain",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--device",
            "cpu",
            "--dist-timeout",
            "2",
        ])
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", free_port().to_string())
        .env_remove("TORCHELASTIC_USE_AGENT_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("distributed: joining the process group at 127.0.0.1:"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

/// What `srun --ntasks 2 chess-train pretrain …` gives each task (Slurm's
/// variables only, the store on the step's first node): the run finishes
/// with rank 0's checkpoint.
#[test]
fn srun_variables_launch() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    // 16 images per task: 4 steps an epoch, so step 2 is mid-epoch.
    common::demo_dataset(&data, 32, 32, PixelDtype::Uint8);
    let port = free_port().to_string();
    let children: Vec<_> = (0..2)
        .map(|r| {
            Command::new(env!("CARGO_BIN_EXE_chess-train"))
                .args(["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"])
                .args([
                    "--arch",
                    "resnet18",
                    "--size",
                    "32",
                    "--batch-size",
                    "4",
                    "--queue",
                    "32",
                    "--device",
                    "auto",
                    "--threads",
                    "1",
                ])
                .args(["--steps", "2", "--no-augment", "--dist-timeout", "60"])
                .env("SLURM_PROCID", r.to_string())
                .env("SLURM_NTASKS", "2")
                .env("SLURM_LOCALID", r.to_string())
                .env("SLURM_STEP_ID", "0")
                .env("SLURM_JOB_ID", "4242")
                .env("SLURM_STEP_NODELIST", "localhost")
                .env("MASTER_PORT", &port)
                .env_remove("MASTER_ADDR")
                .env_remove("RANK")
                .env_remove("WORLD_SIZE")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (r, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "task {r} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(step_jsons(&run), vec!["step-00000002.json"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoints/latest.json")).unwrap()).unwrap();
    let loaders = state["rank_loaders"].as_array().expect("both tasks' loader positions");
    let ranks: Vec<u64> = loaders.iter().map(|l| l["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, vec![0, 1]);
    assert_eq!(state["queue_ptr"].as_i64(), Some(16));
}

/// A world of one through c10d (every collective and the bucketed
/// all-reduce run) trains exactly like the single-process path.
#[test]
fn world_of_one_equals_the_single_process_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::demo_dataset(&data, 16, 32, PixelDtype::Uint8);
    let mut finals = Vec::new();
    for (name, dist) in [("single", false), ("world1", true)] {
        let run = dir.path().join(name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chess-train"));
        cmd.args(["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"])
            .args([
                "--arch",
                "resnet18",
                "--size",
                "32",
                "--batch-size",
                "4",
                "--queue",
                "16",
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .args(["--steps", "3"])
            .env_remove("RANK")
            .env_remove("WORLD_SIZE")
            .env_remove("TORCHELASTIC_USE_AGENT_STORE");
        if dist {
            cmd.env("RANK", "0")
                .env("WORLD_SIZE", "1")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", free_port().to_string());
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        finals.push(weights::read(&run.join("checkpoints/step-00000003.safetensors")).unwrap());
    }
    assert_eq!(finals[0].len(), finals[1].len());
    let mut worst = 0f64;
    for (name, t) in &finals[0] {
        if t.is_floating_point() {
            worst = worst.max(max_abs_diff(t, &finals[1][name]));
        }
    }
    assert!(worst <= 1e-6, "world of one differs from one process by {worst}");
}
