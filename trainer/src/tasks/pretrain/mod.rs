//! MoCo v2 pretraining (`chess-train pretrain`, `export`, `embed`,
//! `curves`): the configuration ([`config`]), the MoCo model and step
//! ([`moco`]), the loop with exact resume ([`train_loop`]), what it records
//! ([`record`]), checkpoints ([`checkpoint`]), the kNN monitor ([`knn`]),
//! pooled features to Parquet ([`embed`]) and the curves ([`plots`]).

pub mod checkpoint;
pub mod config;
pub mod embed;
pub mod knn;
pub mod moco;
pub mod plots;
pub mod record;
pub mod train_loop;
