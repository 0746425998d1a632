//! `chess-train`: the command line of the trainer library. One file per
//! subcommand (its flags, how they override the TOML config, what it
//! prints); the work is in `chess_train::tasks`. Exit codes are the
//! workspace's (`chess_cli::EXIT_CODES_HELP`), from the error's class.

use std::error::Error;
use std::process::ExitCode;

use chess_cli::{Classify, ExitClass};
use clap::{Parser, Subcommand};

mod augment_preview;
mod bench;
mod bone_compare;
mod bone_suppression;
mod curves;
mod device_check;
mod embed;
mod export;
mod fid;
mod finetune;
mod gradcam;
mod import;
mod nodule_gen;
mod predict;
mod pretrain;
mod sweep;

/// CheSS with libtorch: MoCo v2 pretraining of 1-channel ResNets, then downstream
/// classification (import, finetune, predict, sweep, gradcam), image-to-image
/// tasks (bone suppression, nodule generation) and their metrics (fid).
#[derive(Parser, Debug)]
#[command(name = "chess-train", version, about, after_help = chess_cli::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bar or summary.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pretrain an encoder with MoCo v2 on a dataset (directory, URL or manifest).
    Pretrain(pretrain::PretrainArgs),
    /// Write a run's query encoder with torchvision names (loads into
    /// `torchvision.models.resnet50` with a 1-channel conv1, strict, minus `fc`).
    Export(export::ExportArgs),
    /// Write the pooled encoder features of every image (key, features) to Parquet.
    Embed(embed::EmbedArgs),
    /// Draw query/key pairs of augmented views as a PNG grid.
    AugmentPreview(augment_preview::PreviewArgs),
    /// Time MoCo v2 training steps on random input (no data loading): the
    /// benchmark against scripts/bench/pretrain_reference.py.
    Bench(bench::BenchArgs),
    /// Fréchet distance between the images of two sets: FID with the FID
    /// Inception-v3 (pytorch-fid's network and weights), or the same formula
    /// on ResNet-50 features (CheSS or ImageNet weights; not comparable to
    /// published FIDs).
    Fid(fid::FidArgs),
    /// Convert a published PyTorch checkpoint (CheSS/MoCo `state_dict` with
    /// `module.encoder_q.*`, or a torchvision ResNet state dict, conv1 summed
    /// over RGB) into a 1-channel encoder with torchvision names (safetensors).
    Import(import::ImportArgs),
    /// Fine-tune a classifier (CheSS downstream): train on a manifest, pick
    /// the best epoch on another, write test predictions and metrics.
    Finetune(finetune::FinetuneArgs),
    /// Score images with a fine-tuned classifier: a dataset (or manifest), or
    /// DICOM files (through the ingest pixel pipeline) and PNGs → CSV.
    Predict(predict::PredictArgs),
    /// Run a downstream plan (inits × fractions or imbalance settings ×
    /// repeats; resumable) and summarise it like the paper's tables and Fig. 2.
    Sweep(sweep::SweepArgs),
    /// Bone suppression: train a dilated U-Net (L1 + optional CheSS/ImageNet
    /// perceptual loss) on a paired dataset, write the test set's suppressed
    /// images, residual maps and per-image PSNR/SSIM/RMSE.
    BoneSuppression(bone_suppression::BoneArgs),
    /// Paired t-tests of per-image PSNR, SSIM and RMSE between two
    /// bone-suppression runs on the same test set.
    BoneCompare(bone_compare::BoneCompareArgs),
    /// Nodule generation: train SPADE (hinge GAN, 2-scale PatchGAN, optional
    /// VAE, perceptual loss) to turn nodule masks into radiographs.
    NoduleGen(nodule_gen::NoduleArgs),
    /// Grad-CAM heat maps (layer4) of a fine-tuned classifier over a dataset
    /// sample, a DICOM or a PNG, as overlay PNGs with the class scores.
    Gradcam(gradcam::GradcamArgs),
    /// Draw a run's loss, top-1 and learning-rate curves from its metrics.jsonl.
    Curves(curves::CurvesArgs),
    /// Check a device for scripts/device/check.sh: CUDA visible, and the
    /// device augmentations equal to the CPU's on the same parameters (JSON lines).
    DeviceCheck(device_check::DeviceCheckArgs),
}

/// The exit class of the libraries' errors found in a chain.
fn classify(e: &(dyn Error + 'static)) -> Option<ExitClass> {
    if let Some(e) = e.downcast_ref::<chess_train::TrainError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<chess_train::MetricsError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<chess_shards::LoaderError>() {
        return Some(e.exit_class());
    }
    e.downcast_ref::<chess_shards::ShardError>().map(Classify::exit_class)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    chess_cli::logging::init(cli.quiet);
    let quiet = cli.quiet;
    chess_cli::main_with("chess-train", classify, || match cli.command {
        Command::Pretrain(a) => pretrain::run(a, quiet),
        Command::Export(a) => export::run(a, quiet),
        Command::AugmentPreview(a) => augment_preview::run(a, quiet),
        Command::Bench(a) => bench::run(a),
        Command::Embed(a) => embed::run(a, quiet),
        Command::Fid(a) => fid::run(a, quiet),
        Command::Import(a) => import::run(a, quiet),
        Command::Predict(a) => predict::run(a, quiet),
        Command::Sweep(a) => sweep::run(a, quiet),
        Command::Gradcam(a) => gradcam::run(a, quiet),
        Command::Finetune(a) => finetune::run(a, quiet),
        Command::BoneSuppression(a) => bone_suppression::run(a, quiet),
        Command::BoneCompare(a) => bone_compare::run(a),
        Command::NoduleGen(a) => nodule_gen::run(a, quiet),
        Command::Curves(a) => curves::run(a),
        Command::DeviceCheck(a) => device_check::run(a),
    })
}
