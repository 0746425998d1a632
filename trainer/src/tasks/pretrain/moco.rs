//! MoCo v2 as the CheSS upstream builds it (`moco/builder.py`, run by
//! `main_moco_ori.py --mlp --moco-t 0.2 --cos`): a query encoder trained by
//! SGD, a key encoder following it by momentum `m`, a queue of `K`
//! L2-normalised keys initialised `normalize(randn(dim, K), dim=0)`,
//! logits `[q·k⁺, q·queue] / T` with target 0, and cross-entropy.
//!
//! Batch-shuffle BN: keys are computed on a random permutation of the key
//! batch and un-permuted afterwards, as upstream's `_batch_shuffle_ddp`
//! does. On one device the key encoder's BN still sees the whole batch, so
//! (as in upstream with one GPU) the shuffle changes nothing but the order
//! of summation. With a [`Dist`] (several processes) the shuffle runs
//! across ranks ([`Moco::keys_shuffled_across`]), gradients are averaged
//! and the gathered keys of all ranks are enqueued, as upstream under DDP.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::models::resnet::{Arch, HeadKind, ResNet};
use crate::runtime::amp::{self, Precision};
use crate::runtime::dist::Dist;
use crate::runtime::optim::Sgd;
use crate::runtime::scaler::GradScaler;
use crate::{Result, TrainError};

/// The MoCo hyper-parameters (upstream's defaults for CheSS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MocoConfig {
    pub arch: Arch,
    /// Feature dimension (`--moco-dim`).
    pub dim: i64,
    /// Queue size K (`--moco-k`); a multiple of the batch size.
    pub queue: i64,
    /// Key encoder momentum m (`--moco-m`).
    pub momentum: f64,
    /// Softmax temperature T (`--moco-t`).
    pub temperature: f64,
    /// MLP head (`--mlp`).
    pub mlp: bool,
    /// Batch-shuffle the key encoder's input.
    pub shuffle_bn: bool,
}

impl Default for MocoConfig {
    fn default() -> Self {
        MocoConfig {
            arch: Arch::Resnet50,
            dim: 128,
            queue: 65536,
            momentum: 0.999,
            temperature: 0.2,
            mlp: true,
            shuffle_bn: true,
        }
    }
}

/// What one step reports.
#[derive(Debug, Clone, Copy)]
pub struct StepOutput {
    pub loss: f64,
    /// Top-1 accuracy of picking the positive key among queue + positive.
    pub acc1: f64,
}

/// The two encoders, the queue and the query encoder's optimizer.
pub struct Moco {
    pub cfg: MocoConfig,
    pub device: Device,
    pub vs_q: nn::VarStore,
    pub vs_k: nn::VarStore,
    pub enc_q: ResNet,
    pub enc_k: ResNet,
    /// `[dim, K]`, columns L2-normalised.
    pub queue: Tensor,
    pub queue_ptr: i64,
    /// Trainable parameter names (sorted) and the aligned tensors of both encoders.
    pub param_names: Vec<String>,
    pub q_params: Vec<Tensor>,
    pub k_params: Vec<Tensor>,
    pub sgd: Sgd,
    /// Forward passes under autocast at this precision (parameters stay fp32).
    pub precision: Precision,
    /// Inputs (and, after [`Moco::set_channels_last`], conv weights) in NHWC memory order.
    pub channels_last: bool,
    /// Loss scaling, used when `precision` is fp16.
    pub scaler: GradScaler,
    /// Optimizer steps skipped by the scaler (inf/NaN gradients).
    pub skipped_steps: u64,
    /// Seconds spent in optimizer steps (host time: on CUDA the launches, not the kernels).
    pub optimizer_seconds: f64,
    /// Data-parallel training across processes (`None`: this process alone):
    /// shuffle-BN across ranks, averaged gradients, gathered keys enqueued.
    pub dist: Option<Arc<Dist>>,
}

impl Moco {
    /// Fresh encoders (torchvision init), the key encoder a copy of the query
    /// encoder, and a random queue. Seed tch first for reproducibility.
    pub fn new(cfg: MocoConfig, device: Device, sgd_momentum: f64, weight_decay: f64) -> Result<Moco> {
        if cfg.queue <= 0 || cfg.dim <= 0 || cfg.temperature.is_nan() || cfg.temperature <= 0.0 {
            return Err(TrainError::Settings(format!(
                "MoCo settings: queue {} dim {} T {}",
                cfg.queue, cfg.dim, cfg.temperature
            )));
        }
        let head = if cfg.mlp { HeadKind::Mlp(cfg.dim) } else { HeadKind::Linear(cfg.dim) };
        let vs_q = nn::VarStore::new(device);
        let enc_q = ResNet::new(&vs_q.root(), cfg.arch, head);
        let mut vs_k = nn::VarStore::new(device);
        let enc_k = ResNet::new(&vs_k.root(), cfg.arch, head);
        vs_k.copy(&vs_q)?;
        vs_k.freeze();
        let queue = normalize(&Tensor::randn([cfg.dim, cfg.queue], (Kind::Float, device)), 0);
        let qv = vs_q.variables();
        let kv = vs_k.variables();
        let mut param_names: Vec<String> =
            qv.iter().filter(|(_, t)| t.requires_grad()).map(|(n, _)| n.clone()).collect();
        param_names.sort();
        let q_params = param_names.iter().map(|n| qv[n].shallow_clone()).collect();
        let k_params = param_names.iter().map(|n| kv[n].shallow_clone()).collect();
        let sgd = Sgd::new(param_names.len(), sgd_momentum, weight_decay);
        Ok(Moco {
            cfg,
            device,
            vs_q,
            vs_k,
            enc_q,
            enc_k,
            queue,
            queue_ptr: 0,
            param_names,
            q_params,
            k_params,
            sgd,
            precision: Precision::Fp32,
            channels_last: false,
            scaler: GradScaler::default(),
            skipped_steps: 0,
            optimizer_seconds: 0.0,
            dist: None,
        })
    }

    /// Puts every 4-D weight of both encoders in channels-last memory order
    /// (values unchanged) and makes [`Moco::step`] feed channels-last inputs.
    pub fn set_channels_last(&mut self) {
        for vs in [&self.vs_q, &self.vs_k] {
            for (_, mut v) in vs.variables() {
                if v.dim() == 4 {
                    let nhwc = tch::no_grad(|| to_channels_last(&v));
                    v.set_data(&nhwc);
                }
            }
        }
        self.channels_last = true;
    }

    /// `param_k = m·param_k + (1 − m)·param_q` (parameters only, not BN buffers).
    pub fn momentum_update(&mut self) {
        let m = self.cfg.momentum;
        tch::no_grad(|| {
            for (pk, pq) in self.k_params.iter().zip(&self.q_params) {
                let mut pk = pk.shallow_clone();
                let _ = pk.g_mul_scalar_(m).g_add_(&(pq * (1.0 - m)));
            }
        });
    }

    /// L2-normalised keys of `im_k` (no gradient), batch-shuffled through the key encoder.
    pub fn keys(&self, im_k: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let n = im_k.size()[0];
            if self.cfg.shuffle_bn && n > 1 {
                let idx = Tensor::randperm(n, (Kind::Int64, im_k.device()));
                let unshuffle = idx.argsort(0, false);
                let k = normalize(&self.enc_k.forward_t(&im_k.index_select(0, &idx), true), 1);
                k.index_select(0, &unshuffle)
            } else {
                normalize(&self.enc_k.forward_t(im_k, true), 1)
            }
        })
    }

    /// Keys of this rank's `im_k` with the batch shuffled across all ranks,
    /// as upstream's `_batch_shuffle_ddp` / `_batch_unshuffle_ddp`: gather
    /// every rank's key inputs, permute them with rank 0's permutation, run
    /// this rank's slice through the key encoder (its BN sees samples from
    /// every rank), gather the keys and take back this rank's own, unshuffled.
    pub fn keys_shuffled_across(&self, dist: &Dist, im_k: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let (n, world, rank) = (im_k.size()[0], dist.world_size as i64, dist.rank as i64);
            let x_all = dist.all_gather(im_k)?;
            let idx_shuffle = dist.shared_randperm(n * world, im_k.device())?;
            let idx_unshuffle = idx_shuffle.argsort(0, false);
            let mut x = x_all.index_select(0, &idx_shuffle.view([world, n]).get(rank));
            if self.channels_last {
                x = to_channels_last(&x);
            }
            let k = normalize(&self.enc_k.forward_t(&x, true), 1);
            let k_all = dist.all_gather(&k)?;
            Ok(k_all.index_select(0, &idx_unshuffle.view([world, n]).get(rank)))
        })
    }

    /// MoCo logits `[N, 1 + K]` (positive first) for queries `q` and keys `k`, both normalised.
    pub fn logits(&self, q: &Tensor, k: &Tensor) -> Tensor {
        let l_pos = (q * k).sum_dim_intlist(1, true, Kind::Float);
        let l_neg = q.mm(&self.queue);
        Tensor::cat(&[l_pos, l_neg], 1) / self.cfg.temperature
    }

    /// Replaces the oldest queue columns with `keys` `[N, dim]`.
    pub fn enqueue(&mut self, keys: &Tensor) -> Result<()> {
        let n = keys.size()[0];
        if self.cfg.queue % n != 0 {
            return Err(TrainError::Settings(format!(
                "the queue size {} is not a multiple of the batch size {n}",
                self.cfg.queue
            )));
        }
        tch::no_grad(|| {
            let mut slot = self.queue.narrow(1, self.queue_ptr, n);
            slot.copy_(&keys.transpose(0, 1));
        });
        self.queue_ptr = (self.queue_ptr + n) % self.cfg.queue;
        Ok(())
    }

    /// One training step on a query view and a key view `[N, 1, H, W]`
    /// (normalised float on this device) at learning rate `lr`: momentum
    /// update, keys, loss, backward, SGD, enqueue — upstream's order.
    pub fn step(&mut self, im_q: &Tensor, im_k: &Tensor, lr: f64) -> Result<StepOutput> {
        Ok(self.step_lazy(im_q, im_k, lr)?.into())
    }

    /// [`Moco::step`] without waiting for the device: the loss and accuracy
    /// stay tensors until [`StepTensors::read`].
    pub fn step_lazy(&mut self, im_q: &Tensor, im_k: &Tensor, lr: f64) -> Result<StepTensors> {
        let n = im_q.size()[0];
        if self.cfg.queue % n != 0 {
            return Err(TrainError::Settings(format!(
                "the queue size {} is not a multiple of the batch size {n}",
                self.cfg.queue
            )));
        }
        let (im_q, im_k) = if self.channels_last {
            (to_channels_last(im_q), to_channels_last(im_k))
        } else {
            (im_q.shallow_clone(), im_k.shallow_clone())
        };
        let q = amp::autocast(self.device, self.precision, || normalize(&self.enc_q.forward_t(&im_q, true), 1));
        self.momentum_update();
        let dist = self.dist.clone();
        let (k, logits, loss) = amp::autocast(self.device, self.precision, || -> Result<_> {
            let k = match &dist {
                Some(d) if self.cfg.shuffle_bn => self.keys_shuffled_across(d, &im_k)?,
                _ => self.keys(&im_k),
            };
            let logits = self.logits(&q, &k);
            let target = Tensor::zeros([n], (Kind::Int64, self.device));
            let loss = logits.cross_entropy_for_logits(&target);
            Ok((k, logits, loss))
        })?;
        Sgd::zero_grad(&self.q_params);
        if self.precision == Precision::Fp16 {
            // fp16 gradients underflow without scaling; a step whose
            // unscaled gradients hold inf/NaN is skipped (GradScaler.step).
            self.scaler.scale_loss(&loss).backward();
            if let Some(d) = &dist {
                // Averaged before unscaling, so every rank finds the same inf/NaN.
                d.average_gradients(&self.q_params)?;
            }
            let found_inf = self.scaler.unscale(&self.q_params);
            if found_inf {
                self.skipped_steps += 1;
                tracing::debug!(scale = self.scaler.scale, "inf/NaN gradients: optimizer step skipped");
            } else {
                let t = std::time::Instant::now();
                self.sgd.step(&self.q_params, lr);
                self.optimizer_seconds += t.elapsed().as_secs_f64();
            }
            self.scaler.update(found_inf);
        } else {
            loss.backward();
            if let Some(d) = &dist {
                d.average_gradients(&self.q_params)?;
            }
            let t = std::time::Instant::now();
            self.sgd.step(&self.q_params, lr);
            self.optimizer_seconds += t.elapsed().as_secs_f64();
        }
        // Every rank enqueues every rank's keys: the queues stay identical.
        match &dist {
            Some(d) => self.enqueue(&d.all_gather(&k)?)?,
            None => self.enqueue(&k)?,
        }
        let acc1 = tch::no_grad(|| logits.argmax(1, false).eq(0).to_kind(Kind::Float).mean(Kind::Float) * 100.0);
        Ok(StepTensors { loss: loss.detach(), acc1 })
    }
}

/// A step's loss and top-1 accuracy, still on the device.
pub struct StepTensors {
    pub loss: Tensor,
    pub acc1: Tensor,
}

impl StepTensors {
    /// Waits for the device and reads (loss, acc1).
    pub fn read(&self) -> (f64, f64) {
        (self.loss.double_value(&[]), self.acc1.double_value(&[]))
    }
}

impl From<StepTensors> for StepOutput {
    fn from(t: StepTensors) -> StepOutput {
        let (loss, acc1) = t.read();
        StepOutput { loss, acc1 }
    }
}

/// NHWC memory order, NCHW shape: `permute(0,2,3,1).contiguous().permute(0,3,1,2)`.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// `F.normalize(x, dim)`: `x / max(‖x‖₂, 1e-12)`.
pub fn normalize(x: &Tensor, dim: i64) -> Tensor {
    let norm = x.norm_scalaropt_dim(2, [dim], true).clamp_min(1e-12);
    x / norm
}
