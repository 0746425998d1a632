//! Who this process is in a multi-process job, from the launcher's
//! environment: torchrun's and `env://`'s `RANK`/`WORLD_SIZE`/`MASTER_*`,
//! or srun's `SLURM_*` variables; and the store/collective timeout.

use std::time::Duration;

use crate::{Result, TrainError};

/// Default store/collective timeout when neither `--dist-timeout` nor
/// `CHESS_DIST_TIMEOUT` says otherwise (torch's default for Gloo, 30 min).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Which launcher's variables described this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// `torchrun` (its agent serves the store).
    Torchrun,
    /// `RANK`/`WORLD_SIZE`/`MASTER_*` set by hand or another launcher; rank 0 serves the store.
    Env,
    /// `srun`.
    Slurm,
}

/// Who this process is in the job, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    pub launcher: Launcher,
    /// Store key prefix (torchrun: one per restart attempt).
    pub prefix: String,
}

pub(super) fn invalid(msg: String) -> TrainError {
    TrainError::Settings(msg)
}

fn parse_var<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<T>> {
    match get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("environment variable {name}=`{v}` is not a valid number"))),
    }
}

/// The first host of a Slurm node list: `node[03-05,9]` → `node03`,
/// `gpu-a,gpu-b` → `gpu-a`, `n[1-2]-ib` → `n1-ib`.
pub fn first_slurm_host(list: &str) -> Option<String> {
    let list = list.trim();
    // The first entry ends at a comma outside brackets.
    let mut depth = 0;
    let mut end = list.len();
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let entry = &list[..end];
    let host = match (entry.find('['), entry.find(']')) {
        (Some(open), Some(close)) if open < close => {
            let first = entry[open + 1..close].split([',', '-']).next()?;
            format!("{}{}{}", &entry[..open], first, &entry[close + 1..])
        }
        (None, None) => entry.to_string(),
        _ => return None,
    };
    (!host.is_empty()).then_some(host)
}

impl DistEnv {
    /// This process's place in a multi-process job, or `None` when it runs alone.
    pub fn from_env() -> Result<Option<DistEnv>> {
        DistEnv::from_vars(|k| std::env::var(k).ok())
    }

    /// [`DistEnv::from_env`] over any variable lookup (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<DistEnv>> {
        let rank: Option<usize> = parse_var(&get, "RANK")?;
        let world: Option<usize> = parse_var(&get, "WORLD_SIZE")?;
        let env = match (rank, world) {
            (Some(rank), Some(world_size)) => {
                let agent = get("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v == "True");
                let master_addr = get("MASTER_ADDR")
                    .ok_or_else(|| invalid("RANK and WORLD_SIZE are set but MASTER_ADDR is not".into()))?;
                let master_port = parse_var(&get, "MASTER_PORT")?
                    .ok_or_else(|| invalid("RANK and WORLD_SIZE are set but MASTER_PORT is not".into()))?;
                let restart: u64 = parse_var(&get, "TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0);
                DistEnv {
                    rank,
                    world_size,
                    local_rank: parse_var(&get, "LOCAL_RANK")?.unwrap_or(0),
                    master_addr,
                    master_port,
                    launcher: if agent { Launcher::Torchrun } else { Launcher::Env },
                    prefix: format!("chess/attempt_{restart}/"),
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid("set both RANK and WORLD_SIZE (or neither)".into()))
            }
            (None, None) => {
                // srun sets SLURM_STEP_ID for its tasks; a batch script alone is one process.
                let (Some(rank), Some(world_size), Some(_)) = (
                    parse_var::<usize>(&get, "SLURM_PROCID")?,
                    parse_var::<usize>(&get, "SLURM_NTASKS")?,
                    get("SLURM_STEP_ID"),
                ) else {
                    return Ok(None);
                };
                if world_size <= 1 {
                    return Ok(None);
                }
                let master_addr = match get("MASTER_ADDR") {
                    Some(a) => a,
                    None => {
                        let list = get("SLURM_STEP_NODELIST")
                            .or_else(|| get("SLURM_JOB_NODELIST"))
                            .ok_or_else(|| invalid("under srun: no MASTER_ADDR and no SLURM_STEP_NODELIST".into()))?;
                        first_slurm_host(&list)
                            .ok_or_else(|| invalid(format!("SLURM node list `{list}`: no first host")))?
                    }
                };
                let master_port = match parse_var(&get, "MASTER_PORT")? {
                    Some(p) => p,
                    None => 29500 + (parse_var::<u64>(&get, "SLURM_JOB_ID")?.unwrap_or(0) % 1000) as u16,
                };
                DistEnv {
                    rank,
                    world_size,
                    local_rank: parse_var(&get, "SLURM_LOCALID")?.unwrap_or(0),
                    master_addr,
                    master_port,
                    launcher: Launcher::Slurm,
                    prefix: format!(
                        "chess/slurm_{}_{}/",
                        get("SLURM_JOB_ID").unwrap_or_default(),
                        get("SLURM_STEP_ID").unwrap_or_default()
                    ),
                }
            }
        };
        if env.world_size == 0 || env.rank >= env.world_size {
            return Err(invalid(format!(
                "rank {} of world size {}: the rank must be below the world size",
                env.rank, env.world_size
            )));
        }
        Ok(Some(env))
    }
}

/// The store/collective timeout: `CHESS_DIST_TIMEOUT` (seconds) or [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("CHESS_DIST_TIMEOUT") {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(format!("CHESS_DIST_TIMEOUT=`{v}`: seconds > 0"))),
    }
}
