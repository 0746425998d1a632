//! Downstream classification (`chess-train import`, `finetune`, `predict`,
//! `sweep`, `gradcam`): the configuration ([`config`]), targets from
//! manifest columns ([`labels`]), the trained classifier ([`classifier`]),
//! scoring and metrics ([`eval`]), the fine-tuning run ([`run`]) and its
//! predictions and curves ([`report`]), inference ([`predict`]), the paper's
//! sweeps ([`sweep`]), their figures and tables ([`figures`]) and Grad-CAM
//! ([`gradcam`]).

pub mod classifier;
pub mod config;
pub mod eval;
pub mod figures;
pub mod gradcam;
pub mod labels;
pub mod predict;
pub mod report;
pub mod run;
pub mod sweep;
