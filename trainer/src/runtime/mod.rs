//! What runs the networks: the device and the commands' shared prelude
//! ([`device`]), per-step seeds ([`seed`]), mixed precision ([`amp`],
//! [`scaler`]), the optimizer and schedules ([`optim`]) and multi-process
//! training on c10d ([`dist`]); the throughput every training loop reports
//! ([`throughput`]).

pub mod amp;
pub mod device;
pub mod dist;
pub mod optim;
pub mod scaler;
pub mod seed;
pub mod throughput;
