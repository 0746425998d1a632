//! chess-train: MoCo v2 pretraining of 1-channel ResNets on CheSS shards,
//! with tch (libtorch). The only crate of the workspace that links libtorch.
//!
//! - [`resnet`]: ResNet-18/50 with torchvision's names and init.
//! - [`moco`]: MoCo v2 (queue, momentum encoder, batch-shuffle BN, MLP head).
//! - [`optim`]: SGD with momentum/weight decay and the cosine schedule.
//! - [`amp`]: bf16/fp16 autocast (a C++ shim, `csrc/autocast.cpp`);
//!   [`scaler`]: fp16 dynamic loss scaling (GradScaler semantics).
//! - [`augment`]: CheSS's augmentations, batched on the device.
//! - [`data`]: loader batches → device tensors (float only on the device);
//!   [`prefetch`]: the thread that readies the next batch during a step.
//! - [`config`]: the resolved configuration (defaults → TOML → flags).
//! - [`metrics`]: evaluation metrics and statistics (AUC, accuracy,
//!   t-test, Stuart–Maxwell, bootstrap, PSNR/SSIM/RMSE, Fréchet distance).
//! - [`dist`]: multi-process training on c10d (a C++ shim, `csrc/dist.cpp`):
//!   torchrun/Slurm environment, Gloo/NCCL groups, bucketed all-reduce.
//! - [`train`]: the loop, metrics; [`checkpoint`]: save/resume; [`weights`]:
//!   safetensors I/O and torchvision export; [`plots`]: curves; [`embed`]:
//!   pooled features to Parquet; [`knn`]: the kNN monitor.
//! - [`import`]: published PyTorch checkpoints (CheSS/MoCo, torchvision) → encoder safetensors;
//!   [`finetune`]: downstream classification (fine-tuning, linear probe, predictions);
//!   [`predict`]: inference on datasets, DICOMs (ingest's pixel pipeline) and PNGs;
//!   [`sweep`]: inits × settings × repeats with the paper's tables and figure;
//!   [`gradcam`]: Grad-CAM overlays on layer4.
//! - [`perceptual`]: CheSS's perceptual loss (frozen ResNet, L1 over five layers);
//!   [`unet`]: the dilated U-Net; [`bone`]: bone suppression (train, test images, per-image metrics, t-tests);
//!   [`spade`]: SPADE generator, VAE encoder, multiscale PatchGAN; [`nodule`]: nodule generation.

pub mod amp;
pub mod augment;
pub mod bone;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dist;
pub mod embed;
pub mod finetune;
pub mod gradcam;
pub mod import;
pub mod knn;
pub mod metrics;
pub mod moco;
pub mod nodule;
pub mod optim;
pub mod perceptual;
pub mod plots;
pub mod predict;
pub mod prefetch;
pub mod resnet;
pub mod scaler;
pub mod spade;
pub mod sweep;
pub mod train;
pub mod unet;
pub mod weights;

use std::path::PathBuf;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Loader(#[from] chess_shards::LoaderError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// A c10d store or collective failed (a peer died, a timeout, a bad address).
    #[error("distributed: {0}")]
    Dist(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
