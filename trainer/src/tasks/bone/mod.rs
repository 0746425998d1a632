//! Bone suppression (`chess-train bone-suppression`, `bone-compare`): the
//! configuration ([`config`]), training and test scoring ([`run`]) and the
//! paired comparison of two runs ([`compare`]).

pub mod compare;
pub mod config;
pub mod run;
