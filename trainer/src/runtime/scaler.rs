//! Dynamic loss scaling for fp16 training, with `torch.amp.GradScaler`'s
//! semantics: the loss is multiplied by `scale` before backward; the
//! gradients are divided by it before the optimizer step; if any gradient
//! is inf or NaN the step is skipped and the scale multiplied by
//! `backoff_factor` (0.5); after `growth_interval` (2000) consecutive good
//! steps it is multiplied by `growth_factor` (2.0). The initial scale is
//! 2^16. The scale lives on the host, so the decision costs one read of a
//! device scalar per step (as `GradScaler.step` does with `.item()`).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The scaler's settings and state (saved in checkpoints for exact resume).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradScaler {
    pub scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: u64,
    /// Consecutive steps without inf/NaN since the last change of scale.
    pub growth_tracker: u64,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler { scale: 65536.0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000, growth_tracker: 0 }
    }
}

impl GradScaler {
    /// `loss · scale`, the tensor to call backward on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides the gradients of `params` by the scale in place and says
    /// whether any of them holds an inf or NaN (then the step must be skipped).
    pub fn unscale(&self, params: &[Tensor]) -> bool {
        let inv = 1.0 / self.scale;
        let mut found: Option<Tensor> = None;
        tch::no_grad(|| {
            for p in params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = g.g_mul_scalar_(inv);
                let bad = g.isfinite().logical_not().any().to_kind(Kind::Int64);
                found = Some(match found.take() {
                    None => bad,
                    Some(f) => f + bad,
                });
            }
        });
        found.is_some_and(|f| f.int64_value(&[]) > 0)
    }

    /// Updates the scale after a step: back off on inf/NaN, grow after
    /// `growth_interval` good steps in a row.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker >= self.growth_interval {
                // As torch's _amp_update_scale_: never grow to inf.
                let grown = self.scale * self.growth_factor;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            }
        }
    }
}
