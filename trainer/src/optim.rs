//! SGD with momentum and weight decay, as `torch.optim.SGD` computes it
//! (no dampening, no Nesterov): `d = g + wd·p; buf = d` on the first step,
//! else `buf = m·buf + d`; `p -= lr·buf`. Written here rather than taken
//! from tch so that the momentum buffers can be checkpointed.

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
