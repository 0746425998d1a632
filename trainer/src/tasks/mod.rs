//! The commands' work, one folder per task family. Tasks never import one
//! another: what two of them share lives a layer down (models, data, io,
//! runtime).
//!
//! - [`pretrain`]: MoCo v2 pretraining, export, embeddings, curves.
//! - [`classify`]: downstream classification (import, finetune, predict, sweep, gradcam).
//! - [`bone`]: bone suppression and the comparison of two runs.
//! - [`nodule`]: nodule generation with SPADE.

pub mod bone;
pub mod classify;
pub mod nodule;
pub mod pretrain;
