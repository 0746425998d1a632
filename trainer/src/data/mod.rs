//! From the loader to network input: batches as device tensors
//! ([`batch`]), the thread that readies the next one ([`prefetch`]),
//! CheSS's augmentations on the device ([`augment`]), and in-memory paired
//! datasets ([`paired`]).

pub mod augment;
pub mod batch;
pub mod paired;
pub mod prefetch;

pub use batch::{normalise, resize, upload, views, wrap, RawBatch};
