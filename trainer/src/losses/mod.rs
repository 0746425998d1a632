//! Training losses built on a network: [`perceptual`] (CheSS's frozen-ResNet
//! L1 over five layers).

pub mod perceptual;
