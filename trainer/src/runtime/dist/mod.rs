//! Multi-process training on PyTorch's c10d (the engine under
//! `torch.distributed`), through the C++ shim `csrc/dist.cpp`: who this
//! process is ([`DistEnv`]: torchrun's or Slurm's variables), the process
//! group ([`Dist`]: a TCPStore plus Gloo on CPU or NCCL on CUDA), and the
//! collectives data-parallel MoCo needs: bucketed all-reduce of gradients,
//! broadcast, all-gather and barrier.
//!
//! Launch protocols:
//! - `torchrun` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
//!   `MASTER_PORT` and `TORCHELASTIC_USE_AGENT_STORE=True`: its agent already
//!   serves the TCPStore, so every rank connects as a client and keys go
//!   under a prefix (per restart attempt), as `torch.distributed` does.
//! - Plain `env://` (the same variables without the agent store): rank 0
//!   serves the store.
//! - `srun`: `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`; the store host
//!   is `MASTER_ADDR` or the first node of the step's node list, the port
//!   `MASTER_PORT` or 29500 + job id mod 1000.
//!
//! Every wait is bounded by the store/process-group timeout, so a dead peer
//! turns into an error (`TrainError::Dist`) instead of a hang.
//
// FFI into the shim: raw pointers cross the boundary, which the workspace's
// `unsafe_code = deny` forbids elsewhere.
#![allow(unsafe_code)]

use std::ffi::{c_void, CString};
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use crate::{Result, TrainError};

mod env;
mod ffi;

use env::invalid;
pub use env::{first_slurm_host, timeout_from_env, DistEnv, Launcher, DEFAULT_TIMEOUT};
use ffi::{check, ptr};

/// Gradients are all-reduced in flat buckets of about this size (DDP's default, 25 MB).
pub const BUCKET_BYTES: usize = 25 << 20;

/// Process-group backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// NCCL on CUDA devices, Gloo on the CPU.
    #[default]
    Auto,
    Gloo,
    Nccl,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "gloo" => Ok(BackendChoice::Gloo),
            "nccl" => Ok(BackendChoice::Nccl),
            other => Err(format!("backend `{other}`: auto, gloo or nccl")),
        }
    }
}

/// The device of rank `local_rank`: `auto` is `cuda:LOCAL_RANK` when CUDA is
/// available (else the CPU); other specs as [`crate::runtime::device::parse_device`].
pub fn device_for(spec: &str, local_rank: usize) -> Result<Device> {
    if spec == "auto" {
        return Ok(if tch::Cuda::is_available() { Device::Cuda(local_rank) } else { Device::Cpu });
    }
    crate::runtime::device::parse_device(spec)
}

/// Joins the job this process was launched into (torchrun, srun, or the
/// `env://` variables), or `None` when it runs alone. `device` is the run's
/// device spec (`auto` → `cuda:LOCAL_RANK`); `timeout_s` overrides
/// `CHESS_DIST_TIMEOUT`.
pub fn init_from_env(device: &str, backend: BackendChoice, timeout_s: Option<f64>) -> Result<Option<Dist>> {
    let Some(env) = DistEnv::from_env()? else { return Ok(None) };
    let timeout = match timeout_s {
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
        Some(s) => return Err(invalid(format!("--dist-timeout {s}: seconds > 0"))),
        None => timeout_from_env()?,
    };
    let device = device_for(device, env.local_rank)?;
    Dist::init(&env, device, backend, timeout).map(Some)
}

/// Whether this build has the NCCL process group.
pub fn nccl_compiled() -> bool {
    // SAFETY: a constant query.
    unsafe { ffi::chess_dist_nccl_compiled() != 0 }
}

/// A c10d process group (and its store) that this process belongs to.
pub struct Dist {
    group: *mut c_void,
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
    pub nccl: bool,
    /// Where this group's tensors must live: the CUDA device for NCCL, else the CPU.
    pub comm_device: Device,
}

// SAFETY: the c10d objects behind `group` are used through their public,
// thread-safe API (ProcessGroup collectives may be issued from any thread);
// the pointer is only freed in Drop.
unsafe impl Send for Dist {}
unsafe impl Sync for Dist {}

impl Dist {
    /// Joins the job `env` describes, on `device` (NCCL for CUDA unless
    /// `backend` says Gloo), waiting at most `timeout` for the store, the
    /// peers and every later collective.
    pub fn init(env: &DistEnv, device: Device, backend: BackendChoice, timeout: Duration) -> Result<Dist> {
        let nccl = match (backend, device) {
            (BackendChoice::Gloo, _) => false,
            (BackendChoice::Nccl, Device::Cuda(_)) => true,
            (BackendChoice::Auto, Device::Cuda(_)) if !nccl_compiled() => {
                tracing::warn!(
                    "this chess-train was built without NCCL: Gloo between the GPUs (slower); see the README"
                );
                false
            }
            (BackendChoice::Auto, Device::Cuda(_)) => true,
            (BackendChoice::Nccl, d) => {
                return Err(invalid(format!("the NCCL backend needs a CUDA device, not {d:?}")))
            }
            (BackendChoice::Auto, _) => false,
        };
        if nccl && !nccl_compiled() {
            return Err(invalid(
                "this chess-train was built without NCCL (CUDA's full headers were missing at build time): use --dist-backend gloo, or run scripts/setup.sh and rebuild"
                    .into(),
            ));
        }
        let device_index = match device {
            Device::Cuda(i) => i as i32,
            _ => -1,
        };
        let host = CString::new(env.master_addr.clone()).map_err(|_| invalid("MASTER_ADDR holds a NUL byte".into()))?;
        let prefix = CString::new(env.prefix.clone()).map_err(|_| invalid("store prefix holds a NUL byte".into()))?;
        let mut group = std::ptr::null_mut();
        tracing::debug!(rank = env.rank, world = env.world_size, addr = %env.master_addr, port = env.master_port, launcher = ?env.launcher, nccl, "joining the process group");
        // SAFETY: valid C strings for the call's duration; `group` is written on success only.
        let msg = unsafe {
            ffi::chess_dist_init(
                host.as_ptr(),
                env.master_port as i32,
                env.rank as i32,
                env.world_size as i32,
                (env.launcher == Launcher::Torchrun) as i32,
                prefix.as_ptr(),
                nccl as i32,
                device_index,
                timeout.as_millis().min(i64::MAX as u128) as i64,
                &mut group,
            )
        };
        check(
            &format!(
                "joining the process group at {}:{} as rank {} of {}",
                env.master_addr, env.master_port, env.rank, env.world_size
            ),
            msg,
        )?;
        let comm_device = if nccl { device } else { Device::Cpu };
        Ok(Dist { group, rank: env.rank, world_size: env.world_size, local_rank: env.local_rank, nccl, comm_device })
    }

    /// Rank 0 writes checkpoints and logs.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// In-place sum of `t` over all ranks.
    pub fn all_reduce_sum(&self, t: &Tensor) -> Result<()> {
        // SAFETY: `t` is a live tensor; the shim only reads/writes its data.
        check("all-reduce", unsafe { ffi::chess_dist_all_reduce_sum(self.group, ptr(t)) })
    }

    /// In place: every rank gets `root`'s values of `t`.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<()> {
        // SAFETY: as above.
        check("broadcast", unsafe { ffi::chess_dist_broadcast(self.group, ptr(t), root as i32) })
    }

    /// `[world · n, …]`: every rank's `t` `[n, …]` stacked in rank order.
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let input = t.contiguous();
        let mut shape = input.size();
        shape[0] *= self.world_size as i64;
        let out = Tensor::empty(shape.as_slice(), (input.kind(), input.device()));
        // SAFETY: both tensors live across the call; `out` has room for every rank's rows.
        check("all-gather", unsafe { ffi::chess_dist_all_gather(self.group, ptr(&out), ptr(&input)) })?;
        Ok(out)
    }

    /// Waits until every rank has reached this point.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: no tensors cross.
        check("barrier", unsafe { ffi::chess_dist_barrier(self.group) })
    }

    /// Runs `op` on flat buckets of about [`BUCKET_BYTES`] made of
    /// `tensors` (grouped by dtype and device, in order), then copies the
    /// results back into the tensors.
    fn bucketed(&self, tensors: &[Tensor], mut op: impl FnMut(&Tensor) -> Result<()>) -> Result<()> {
        let mut start = 0;
        while start < tensors.len() {
            let (kind, device) = (tensors[start].kind(), tensors[start].device());
            let mut end = start;
            let mut bytes = 0usize;
            while end < tensors.len() && tensors[end].kind() == kind && tensors[end].device() == device {
                let b = tensors[end].numel() * kind.elt_size_in_bytes();
                if end > start && bytes + b > BUCKET_BYTES {
                    break;
                }
                bytes += b;
                end += 1;
            }
            let group = &tensors[start..end];
            tch::no_grad(|| -> Result<()> {
                let flats: Vec<Tensor> = group.iter().map(|t| t.reshape([-1])).collect();
                let flat = Tensor::cat(&flats, 0);
                op(&flat)?;
                let mut offset = 0;
                for t in group {
                    let n = t.numel() as i64;
                    let mut dst = t.shallow_clone();
                    dst.copy_(&flat.narrow(0, offset, n).view(t.size().as_slice()));
                    offset += n;
                }
                Ok(())
            })?;
            start = end;
        }
        Ok(())
    }

    /// Replaces each tensor by its mean over all ranks (bucketed all-reduce).
    pub fn all_reduce_mean(&self, tensors: &[Tensor]) -> Result<()> {
        let world = self.world_size as f64;
        self.bucketed(tensors, |flat| {
            self.all_reduce_sum(flat)?;
            let mut f = flat.shallow_clone();
            // Integer tensors (e.g. BN's batch counters) divide exactly or floor.
            let _ = if f.is_floating_point() {
                f.g_div_scalar_(world)
            } else {
                f.floor_divide_scalar_(self.world_size as i64)
            };
            Ok(())
        })
    }

    /// Averages the gradients of `params` over all ranks (DDP's all-reduce,
    /// bucketed; a world of one runs it too, so its cost can be measured). Parameters without a gradient are skipped, identically on
    /// every rank since the graphs are the same.
    pub fn average_gradients(&self, params: &[Tensor]) -> Result<()> {
        let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).filter(|g| g.defined()).collect();
        self.all_reduce_mean(&grads)
    }

    /// Every rank gets rank `root`'s values of `tensors` (bucketed broadcast).
    pub fn broadcast_all(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        self.bucketed(tensors, |flat| self.broadcast(flat, root))
    }

    /// Broadcasts every variable (parameters and buffers) of `vs` from rank 0, in name order.
    pub fn broadcast_vars(&self, vs: &tch::nn::VarStore) -> Result<()> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors: Vec<Tensor> = vars.into_iter().map(|(_, t)| t).collect();
        self.broadcast_all(&tensors, 0)
    }

    /// Every rank's `bytes`, by rank (e.g. each rank's serialised loader position).
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let len = Tensor::from_slice(&[bytes.len() as i64]).to_device(self.comm_device);
        let lens: Vec<i64> = Vec::try_from(&self.all_gather(&len)?.to_device(Device::Cpu)).map_err(TrainError::from)?;
        let max = lens.iter().copied().max().unwrap_or(0);
        let mut padded = bytes.to_vec();
        padded.resize(max as usize, 0);
        let all = self.all_gather(&Tensor::from_slice(&padded).view([1, max]).to_device(self.comm_device))?;
        let all: Vec<u8> = Vec::try_from(&all.flatten(0, -1).to_device(Device::Cpu)).map_err(TrainError::from)?;
        Ok(all.chunks(max.max(1) as usize).zip(&lens).map(|(c, &n)| c[..n as usize].to_vec()).collect())
    }

    /// A random permutation of `0..n` drawn on rank 0 and shared with every rank.
    pub fn shared_randperm(&self, n: i64, device: Device) -> Result<Tensor> {
        let idx = if self.is_main() {
            Tensor::randperm(n, (Kind::Int64, device))
        } else {
            Tensor::zeros([n], (Kind::Int64, device))
        };
        self.broadcast(&idx, 0)?;
        Ok(idx)
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        // SAFETY: created by chess_dist_init, freed once.
        unsafe { ffi::chess_dist_destroy(self.group) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn alone_without_variables() {
        assert_eq!(DistEnv::from_vars(vars(&[])).unwrap(), None);
        // A Slurm batch script (no srun step) or a one-task step is one process.
        assert_eq!(DistEnv::from_vars(vars(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "8")])).unwrap(), None);
        assert_eq!(
            DistEnv::from_vars(vars(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1"), ("SLURM_STEP_ID", "0")])).unwrap(),
            None
        );
    }

    #[test]
    fn torchrun_variables() {
        let e = DistEnv::from_vars(vars(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world_size, e.local_rank, e.master_port), (3, 8, 1, 29400));
        assert_eq!(e.launcher, Launcher::Torchrun);
        assert_eq!(e.prefix, "chess/attempt_2/");
        let plain =
            DistEnv::from_vars(vars(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]))
                .unwrap()
                .unwrap();
        assert_eq!(plain.launcher, Launcher::Env);
    }

    #[test]
    fn slurm_variables() {
        let e = DistEnv::from_vars(vars(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "5"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_JOB_ID", "123456"),
            ("SLURM_STEP_NODELIST", "gpu[07-08]"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world_size, e.local_rank), (5, 16, 5));
        assert_eq!(e.master_addr, "gpu07");
        assert_eq!(e.master_port, 29500 + 456);
        assert_eq!(e.launcher, Launcher::Slurm);
    }

    #[test]
    fn bad_variables_are_named() {
        let e = DistEnv::from_vars(vars(&[("RANK", "x"), ("WORLD_SIZE", "2")])).unwrap_err().to_string();
        assert!(e.contains("RANK=`x`"), "{e}");
        let e =
            DistEnv::from_vars(vars(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]))
                .unwrap_err()
                .to_string();
        assert!(e.contains("below the world size"), "{e}");
        let e = DistEnv::from_vars(vars(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        assert!(DistEnv::from_vars(vars(&[("RANK", "0")])).is_err());
    }

    #[test]
    fn slurm_host_lists() {
        assert_eq!(first_slurm_host("node[03-05,9]").as_deref(), Some("node03"));
        assert_eq!(first_slurm_host("gpu-a,gpu-b").as_deref(), Some("gpu-a"));
        assert_eq!(first_slurm_host("n[1-2]-ib,m3").as_deref(), Some("n1-ib"));
        assert_eq!(first_slurm_host("single").as_deref(), Some("single"));
        assert_eq!(first_slurm_host("bad[").as_deref(), None);
    }

    #[test]
    fn nccl_needs_cuda() {
        let env = DistEnv {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: 1,
            launcher: Launcher::Env,
            prefix: "t/".into(),
        };
        let e = Dist::init(&env, Device::Cpu, BackendChoice::Nccl, Duration::from_secs(1))
            .err()
            .expect("NCCL on the CPU")
            .to_string();
        assert!(e.contains("needs a CUDA device"), "{e}");
    }

    /// A world of one: the collectives run through Gloo and leave values as they are.
    #[test]
    fn world_of_one_collectives() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env = DistEnv {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: port,
            launcher: Launcher::Env,
            prefix: "test/".into(),
        };
        let d = Dist::init(&env, Device::Cpu, BackendChoice::Auto, Duration::from_secs(20)).unwrap();
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        d.all_reduce_sum(&t).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0, 3.0]);
        let g = d.all_gather(&t.view([3, 1])).unwrap();
        assert_eq!(g.size(), vec![3, 1]);
        d.barrier().unwrap();
        let p = d.shared_randperm(5, Device::Cpu).unwrap();
        assert_eq!(Vec::<i64>::try_from(&p.sort(0, false).0).unwrap(), vec![0, 1, 2, 3, 4]);
        // Bucketing: many tensors, mixed dtypes, values unchanged by a mean over one rank.
        let ts = vec![
            Tensor::from_slice(&[1.0f32, 2.0]),
            Tensor::from_slice(&[3i64]),
            Tensor::ones([4, 4], (Kind::Float, Device::Cpu)),
        ];
        d.all_reduce_mean(&ts).unwrap();
        assert_eq!(d.all_gather_bytes(b"abc").unwrap(), vec![b"abc".to_vec()]);
        assert_eq!(Vec::<f32>::try_from(&ts[0]).unwrap(), vec![1.0, 2.0]);
        assert_eq!(ts[2].sum(Kind::Float).double_value(&[]), 16.0);
    }
}
