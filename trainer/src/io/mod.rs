//! Files in and out: tensors and safetensors ([`weights`]), atomic writes
//! ([`atomic`]), pretraining checkpoints as other commands find them
//! ([`checkpoint`]), PyTorch pickles through the venv's torch ([`import`]),
//! TOML configs ([`config_file`]), CSV cells ([`csv`]), grey PNGs ([`png`]),
//! TensorBoard event files ([`tensorboard`]) and a run's `metrics.jsonl` with
//! its event file ([`run_log`]).

pub mod atomic;
pub mod checkpoint;
pub mod config_file;
pub mod csv;
pub mod import;
pub mod png;
pub mod run_log;
pub mod tensorboard;
pub mod weights;
