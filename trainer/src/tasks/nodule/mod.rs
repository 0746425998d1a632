//! Nodule generation (`chess-train nodule-gen`): the configuration
//! ([`config`]) and SPADE's training run ([`run`]).

pub mod config;
pub mod run;
