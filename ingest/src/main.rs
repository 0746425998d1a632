//! `chess-ingest`: turn a PACS export (or CheXpert, or paired images) into a
//! de-identified CheSS dataset. Binary side: the command line
//! (`dicom` is the default subcommand, so `chess-ingest /pacs/export`
//! works), the progress bar, the summary and the exit code
//! (`chess_cli::main_with`: 0 ok, 2 usage, 3 input, 4 output, 5 internal;
//! rejected files are not failures).

use std::error::Error;
use std::process::ExitCode;

use chess_cli::{Classify, ExitClass, EXIT_CODES_HELP};
use clap::{Parser, Subcommand};

mod chexpert_cli;
mod cli_options;
mod datasets_cli;
mod dicom_cli;
mod malloc;
mod pairs_cli;

/// Turn hospital DICOM exports (or CheXpert, or image pairs) into a
/// de-identified dataset of clipped, resized radiographs: tar shards, a
/// Parquet manifest and dataset.json, with every input accounted for.
#[derive(Parser, Debug)]
#[command(
    name = "chess-ingest",
    version,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true,
    after_help = top_after_help(),
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Without a subcommand: `chess-ingest INPUTS…` is `chess-ingest dicom INPUTS…`.
    #[command(flatten)]
    dicom: dicom_cli::DicomArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import DICOM exports (folders, .zip, .tar, .tar.gz); the default without a subcommand.
    #[command(after_help = dicom_cli::after_help())]
    Dicom(dicom_cli::DicomArgs),

    /// Import CheXpert as released (train.csv, valid.csv, JPEG/PNG images).
    ///
    /// Reads train.csv, valid.csv and test_labels.csv or test.csv when present,
    /// with the JPEG/PNG images they name, into a CheSS dataset: the same pixel
    /// pipeline as DICOM ingest, the 14 observations as label columns (1, 0, -1
    /// uncertain, null for blank), sex, age, view, patient, study and split.
    #[command(after_help = chexpert_cli::after_help())]
    Chexpert(chexpert_cli::ChexpertArgs),

    /// Import image pairs from a source,target[,mask] CSV of DICOM/PNG paths.
    ///
    /// For bone suppression, nodule generation and the like: each row of the
    /// CSV becomes one sample with `<key>.npy.zst` (source),
    /// `<key>.target.npy.zst` and, with a mask column, `<key>.mask.npy.zst`.
    #[command(after_help = pairs_cli::after_help())]
    Pairs(pairs_cli::PairsArgs),

    /// Import an ImageFolder tree (ROOT/<class>/*.png|jpg|dcm), or a flat unlabelled one.
    ///
    /// The class folder's name becomes the `class` label column; with --flat,
    /// every image of the tree is an unlabelled sample. DICOM files go
    /// through the DICOM path with de-identification.
    #[command(after_help = datasets_cli::after_help("folders"))]
    Folders(datasets_cli::FoldersArgs),

    /// Import MIMIC-CXR-JPG (its chexpert/negbio, metadata and split CSVs, files/p*/).
    ///
    /// Labels joined by study, ViewPosition from the metadata, the official
    /// split; subject_id and study_id kept as patient_id and study_id.
    #[command(after_help = datasets_cli::after_help("mimic"))]
    Mimic(datasets_cli::MimicArgs),

    /// Import NIH ChestX-ray14 (Data_Entry_2017.csv, BBox_List_2017.csv, split lists, images*/).
    ///
    /// The |-separated findings as label columns, boxes as JSON, the
    /// official split; RGBA/RGB files read as grey (BT.601 luma, alpha ignored).
    #[command(after_help = datasets_cli::after_help("nih"))]
    Nih(datasets_cli::NihArgs),

    /// Import PadChest (its label CSV and 16-bit PNGs in numbered folders).
    ///
    /// Label lists parsed into columns, Projection mapped to view_position,
    /// 16-bit PNGs read at 16 bits.
    #[command(after_help = datasets_cli::after_help("padchest"))]
    Padchest(datasets_cli::PadchestArgs),

    /// Import VinDr-CXR (DICOM with image_labels_*.csv and annotations_*.csv).
    ///
    /// Through the DICOM path (de-identification included; VinDr's image ids
    /// kept), the readers' labels aggregated by --readers, boxes as JSON.
    #[command(after_help = datasets_cli::after_help("vindr"))]
    Vindr(datasets_cli::VindrArgs),
}

fn top_after_help() -> String {
    format!(
        "A folder named like a subcommand is ingested with `chess-ingest ./pairs` or `chess-ingest dicom pairs`.\n\
CheXpert as released (train.csv, valid.csv, JPEG/PNG images): see `chess-ingest chexpert --help`.\n\
Paired images (a source,target[,mask] CSV of DICOM/PNG paths): see `chess-ingest pairs --help`.\n\
Public chest X-ray sets: `chess-ingest folders|mimic|nih|padchest|vindr --help`.\n\n{EXIT_CODES_HELP}"
    )
}

fn main() -> ExitCode {
    malloc::keep_freed_image_buffers();
    let cli = Cli::parse();
    chess_cli::main_with("chess-ingest", classify, || match cli.command {
        None => dicom_cli::run(cli.dicom),
        Some(Command::Dicom(args)) => dicom_cli::run(args),
        Some(Command::Chexpert(args)) => chexpert_cli::run(args),
        Some(Command::Pairs(args)) => pairs_cli::run(args),
        Some(Command::Folders(args)) => datasets_cli::run_folders(args),
        Some(Command::Mimic(args)) => datasets_cli::run_mimic(args),
        Some(Command::Nih(args)) => datasets_cli::run_nih(args),
        Some(Command::Padchest(args)) => datasets_cli::run_padchest(args),
        Some(Command::Vindr(args)) => datasets_cli::run_vindr(args),
    })
}

/// The exit class of the ingest library's errors.
fn classify(e: &(dyn Error + 'static)) -> Option<ExitClass> {
    use chess_ingest::{deid::KeyError, discover::DiscoverError, error::IngestError, labels::LabelsError};
    if let Some(e) = e.downcast_ref::<IngestError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<chess_ingest::upload::UploadError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<KeyError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<LabelsError>() {
        return Some(e.exit_class());
    }
    e.downcast_ref::<DiscoverError>().map(Classify::exit_class)
}
