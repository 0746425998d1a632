//! The networks, with PyTorch's (torchvision's, NVlabs', pytorch-fid's)
//! names so that weights move both ways: [`resnet`] (ResNet-18/50, 1
//! channel), [`encoder`] (a ResNet encoder from any published or trained
//! source), [`unet`] (the dilated U-Net), [`spade`] (SPADE generator, VAE
//! encoder, PatchGAN) and [`inception`] (the FID Inception-v3).

pub mod encoder;
pub mod inception;
pub mod resnet;
pub mod spade;
pub mod unet;
