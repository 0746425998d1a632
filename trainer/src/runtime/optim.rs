//! SGD with momentum and weight decay, as `torch.optim.SGD` computes it
//! (no dampening, no Nesterov): `d = g + wd·p; buf = d` on the first step,
//! else `buf = m·buf + d`; `p -= lr·buf`. Written here rather than taken
//! from tch so that the momentum buffers can be checkpointed. And the
//! learning-rate schedules: the cosine one of pretraining, PyTorch's
//! ReduceLROnPlateau of fine-tuning ([`Plateau`]).

use tch::Tensor;

/// The optimizer's settings and momentum buffers, one per parameter (in
/// the order of the parameter list it is stepped with).
#[derive(Debug)]
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    pub buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    pub fn new(params: usize, momentum: f64, weight_decay: f64) -> Sgd {
        Sgd { momentum, weight_decay, buffers: (0..params).map(|_| None).collect() }
    }

    /// One update of `params` (leaf tensors with gradients) at `lr`.
    pub fn step(&mut self, params: &[Tensor], lr: f64) {
        assert_eq!(params.len(), self.buffers.len(), "parameter count changed");
        tch::no_grad(|| {
            let neg_lr = params.first().map(|p| Tensor::from(-lr).to_kind(p.kind()).to_device(p.device()));
            let Some(neg_lr) = neg_lr else { return };
            for (p, buf) in params.iter().zip(self.buffers.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                // One temporary per parameter, as torch's single-tensor SGD
                // (`grad.add(param, alpha=wd)`): d = wd·p, then d += g.
                let d = if self.weight_decay != 0.0 {
                    let mut d = p * self.weight_decay;
                    let _ = d.g_add_(&g);
                    d
                } else {
                    g.copy()
                };
                let b = match buf.take() {
                    None => d,
                    Some(mut b) => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                        b
                    }
                };
                // p += b · (−lr) in one kernel (torch: `param.add_(buf, alpha=-lr)`).
                let mut p = p.shallow_clone();
                let _ = p.addcmul_(&b, &neg_lr);
                *buf = Some(b);
            }
        });
    }

    /// Zeroes the gradients of `params`.
    pub fn zero_grad(params: &[Tensor]) {
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }
}

/// MoCo's cosine schedule, per epoch (`adjust_learning_rate` with `--cos`).
pub fn cosine_lr(base: f64, epoch: u64, epochs: u64) -> f64 {
    base * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos())
}

/// PyTorch's ReduceLROnPlateau (mode min, threshold_mode rel, cooldown 0).
#[derive(Debug, Clone)]
pub struct Plateau {
    pub factor: f64,
    pub patience: u64,
    pub threshold: f64,
    pub min_lr: f64,
    best: f64,
    bad_epochs: u64,
}

impl Plateau {
    pub fn new(factor: f64, patience: u64, threshold: f64, min_lr: f64) -> Plateau {
        Plateau { factor, patience, threshold, min_lr, best: f64::INFINITY, bad_epochs: 0 }
    }

    /// The learning rate after an epoch with validation loss `value`.
    pub fn step(&mut self, value: f64, lr: f64) -> f64 {
        if value < self.best * (1.0 - self.threshold) {
            self.best = value;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.patience {
            self.bad_epochs = 0;
            return (lr * self.factor).max(self.min_lr);
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_more_than_patience_bad_epochs() {
        // PyTorch: ReduceLROnPlateau(factor=0.5, patience=2) on 1, 1, 1, 1 → reduces at the 4th step.
        let mut p = Plateau::new(0.5, 2, 1e-4, 0.0);
        let lrs: Vec<f64> = [1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
            .iter()
            .scan(1.0, |lr, v| {
                *lr = p.step(*v, *lr);
                Some(*lr)
            })
            .collect();
        assert_eq!(lrs, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]);
    }
}
