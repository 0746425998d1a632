//! The FID Inception-v3 (pytorch-fid's `fid_inception_v3`, the TensorFlow
//! FID network ported to PyTorch): torchvision's Inception-v3 layout and
//! names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`,
//! …) with FID's patches: average pools that leave the padding out of the
//! mean (Mixed_5b–5d, 6b–6e, 7b) and a max pool in Mixed_7c's pool branch.
//! Eval mode only; output: the 2048-d pooled features after Mixed_7c.
//!
//! Input as pytorch-fid's `InceptionV3`: unit-range images, bilinear resize
//! (no antialiasing) to 299 × 299, scaled to [−1, 1]; grey images are
//! repeated over the three channels (what PIL's `convert("RGB")` does).
//! The weights (`pt_inception-2015-12-05-6726825d.pth`) are not shipped:
//! convert the state dict to safetensors once (see the README).

use tch::nn;
use tch::Tensor;

/// Conv (no bias) + BatchNorm (eps 0.001) + ReLU, torchvision's `BasicConv2d`.
#[derive(Debug)]
struct BasicConv {
    conv: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl BasicConv {
    fn new(p: nn::Path<'_>, c_in: i64, c_out: i64, k: [i64; 2], stride: i64, pad: [i64; 2]) -> BasicConv {
        let cfg =
            nn::ConvConfigND::<[i64; 2]> { stride: [stride, stride], padding: pad, bias: false, ..Default::default() };
        let conv = nn::conv(&p / "conv", c_in, c_out, k, cfg);
        let bn = nn::batch_norm2d(&p / "bn", c_out, nn::BatchNormConfig { eps: 0.001, ..Default::default() });
        BasicConv { conv, bn }
    }

    fn sq(p: nn::Path<'_>, c_in: i64, c_out: i64, k: i64, stride: i64, pad: i64) -> BasicConv {
        BasicConv::new(p, c_in, c_out, [k, k], stride, [pad, pad])
    }

    fn f(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, false).relu()
    }
}

/// TensorFlow's 3×3 average pool (stride 1, padding 1, padding not counted).
fn avg_pool_tf(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
}

#[derive(Debug)]
struct BlockA {
    b1: BasicConv,
    b5_1: BasicConv,
    b5_2: BasicConv,
    b3_1: BasicConv,
    b3_2: BasicConv,
    b3_3: BasicConv,
    pool: BasicConv,
}

impl BlockA {
    fn new(p: nn::Path<'_>, c: i64, pool_features: i64) -> BlockA {
        BlockA {
            b1: BasicConv::sq(&p / "branch1x1", c, 64, 1, 1, 0),
            b5_1: BasicConv::sq(&p / "branch5x5_1", c, 48, 1, 1, 0),
            b5_2: BasicConv::sq(&p / "branch5x5_2", 48, 64, 5, 1, 2),
            b3_1: BasicConv::sq(&p / "branch3x3dbl_1", c, 64, 1, 1, 0),
            b3_2: BasicConv::sq(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            b3_3: BasicConv::sq(&p / "branch3x3dbl_3", 96, 96, 3, 1, 1),
            pool: BasicConv::sq(&p / "branch_pool", c, pool_features, 1, 1, 0),
        }
    }

    fn f(&self, x: &Tensor) -> Tensor {
        Tensor::cat(
            &[
                self.b1.f(x),
                self.b5_2.f(&self.b5_1.f(x)),
                self.b3_3.f(&self.b3_2.f(&self.b3_1.f(x))),
                self.pool.f(&avg_pool_tf(x)),
            ],
            1,
        )
    }
}

#[derive(Debug)]
struct BlockB {
    b3: BasicConv,
    d1: BasicConv,
    d2: BasicConv,
    d3: BasicConv,
}

impl BlockB {
    fn new(p: nn::Path<'_>, c: i64) -> BlockB {
        BlockB {
            b3: BasicConv::sq(&p / "branch3x3", c, 384, 3, 2, 0),
            d1: BasicConv::sq(&p / "branch3x3dbl_1", c, 64, 1, 1, 0),
            d2: BasicConv::sq(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            d3: BasicConv::sq(&p / "branch3x3dbl_3", 96, 96, 3, 2, 0),
        }
    }

    fn f(&self, x: &Tensor) -> Tensor {
        Tensor::cat(
            &[self.b3.f(x), self.d3.f(&self.d2.f(&self.d1.f(x))), x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)],
            1,
        )
    }
}

#[derive(Debug)]
struct BlockC {
    b1: BasicConv,
    s: [BasicConv; 3],
    d: [BasicConv; 5],
    pool: BasicConv,
}

impl BlockC {
    fn new(p: nn::Path<'_>, c: i64, c7: i64) -> BlockC {
        let (row, col) = ([1, 7], [7, 1]);
        let (prow, pcol) = ([0, 3], [3, 0]);
        BlockC {
            b1: BasicConv::sq(&p / "branch1x1", c, 192, 1, 1, 0),
            s: [
                BasicConv::sq(&p / "branch7x7_1", c, c7, 1, 1, 0),
                BasicConv::new(&p / "branch7x7_2", c7, c7, row, 1, prow),
                BasicConv::new(&p / "branch7x7_3", c7, 192, col, 1, pcol),
            ],
            d: [
                BasicConv::sq(&p / "branch7x7dbl_1", c, c7, 1, 1, 0),
                BasicConv::new(&p / "branch7x7dbl_2", c7, c7, col, 1, pcol),
                BasicConv::new(&p / "branch7x7dbl_3", c7, c7, row, 1, prow),
                BasicConv::new(&p / "branch7x7dbl_4", c7, c7, col, 1, pcol),
                BasicConv::new(&p / "branch7x7dbl_5", c7, 192, row, 1, prow),
            ],
            pool: BasicConv::sq(&p / "branch_pool", c, 192, 1, 1, 0),
        }
    }

    fn f(&self, x: &Tensor) -> Tensor {
        let chain = |convs: &[BasicConv]| convs.iter().fold(x.shallow_clone(), |y, c| c.f(&y));
        Tensor::cat(&[self.b1.f(x), chain(&self.s), chain(&self.d), self.pool.f(&avg_pool_tf(x))], 1)
    }
}

#[derive(Debug)]
struct BlockD {
    b3: [BasicConv; 2],
    b7: [BasicConv; 4],
}

impl BlockD {
    fn new(p: nn::Path<'_>, c: i64) -> BlockD {
        BlockD {
            b3: [
                BasicConv::sq(&p / "branch3x3_1", c, 192, 1, 1, 0),
                BasicConv::sq(&p / "branch3x3_2", 192, 320, 3, 2, 0),
            ],
            b7: [
                BasicConv::sq(&p / "branch7x7x3_1", c, 192, 1, 1, 0),
                BasicConv::new(&p / "branch7x7x3_2", 192, 192, [1, 7], 1, [0, 3]),
                BasicConv::new(&p / "branch7x7x3_3", 192, 192, [7, 1], 1, [3, 0]),
                BasicConv::sq(&p / "branch7x7x3_4", 192, 192, 3, 2, 0),
            ],
        }
    }

    fn f(&self, x: &Tensor) -> Tensor {
        let chain = |convs: &[BasicConv]| convs.iter().fold(x.shallow_clone(), |y, c| c.f(&y));
        Tensor::cat(&[chain(&self.b3), chain(&self.b7), x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)], 1)
    }
}

#[derive(Debug)]
struct BlockE {
    b1: BasicConv,
    b3_1: BasicConv,
    b3_2a: BasicConv,
    b3_2b: BasicConv,
    d1: BasicConv,
    d2: BasicConv,
    d3a: BasicConv,
    d3b: BasicConv,
    pool: BasicConv,
    /// FID's Mixed_7c pools with max instead of average.
    max_pool: bool,
}

impl BlockE {
    fn new(p: nn::Path<'_>, c: i64, max_pool: bool) -> BlockE {
        BlockE {
            b1: BasicConv::sq(&p / "branch1x1", c, 320, 1, 1, 0),
            b3_1: BasicConv::sq(&p / "branch3x3_1", c, 384, 1, 1, 0),
            b3_2a: BasicConv::new(&p / "branch3x3_2a", 384, 384, [1, 3], 1, [0, 1]),
            b3_2b: BasicConv::new(&p / "branch3x3_2b", 384, 384, [3, 1], 1, [1, 0]),
            d1: BasicConv::sq(&p / "branch3x3dbl_1", c, 448, 1, 1, 0),
            d2: BasicConv::sq(&p / "branch3x3dbl_2", 448, 384, 3, 1, 1),
            d3a: BasicConv::new(&p / "branch3x3dbl_3a", 384, 384, [1, 3], 1, [0, 1]),
            d3b: BasicConv::new(&p / "branch3x3dbl_3b", 384, 384, [3, 1], 1, [1, 0]),
            pool: BasicConv::sq(&p / "branch_pool", c, 192, 1, 1, 0),
            max_pool,
        }
    }

    fn f(&self, x: &Tensor) -> Tensor {
        let b3 = self.b3_1.f(x);
        let d = self.d2.f(&self.d1.f(x));
        let pooled = if self.max_pool { x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false) } else { avg_pool_tf(x) };
        Tensor::cat(
            &[self.b1.f(x), self.b3_2a.f(&b3), self.b3_2b.f(&b3), self.d3a.f(&d), self.d3b.f(&d), self.pool.f(&pooled)],
            1,
        )
    }
}

/// pytorch-fid's FID Inception-v3 up to its 2048-d average pool.
#[derive(Debug)]
pub struct FidInception {
    stem: [BasicConv; 5],
    a: [BlockA; 3],
    b: BlockB,
    c: [BlockC; 4],
    d: BlockD,
    e: [BlockE; 2],
}

/// Input side the network was trained at.
pub const INCEPTION_SIZE: i64 = 299;

impl FidInception {
    /// Builds the network under `p` (the VarStore's root gives torchvision's names).
    pub fn new(p: &nn::Path<'_>) -> FidInception {
        FidInception {
            stem: [
                BasicConv::sq(p / "Conv2d_1a_3x3", 3, 32, 3, 2, 0),
                BasicConv::sq(p / "Conv2d_2a_3x3", 32, 32, 3, 1, 0),
                BasicConv::sq(p / "Conv2d_2b_3x3", 32, 64, 3, 1, 1),
                BasicConv::sq(p / "Conv2d_3b_1x1", 64, 80, 1, 1, 0),
                BasicConv::sq(p / "Conv2d_4a_3x3", 80, 192, 3, 1, 0),
            ],
            a: [
                BlockA::new(p / "Mixed_5b", 192, 32),
                BlockA::new(p / "Mixed_5c", 256, 64),
                BlockA::new(p / "Mixed_5d", 288, 64),
            ],
            b: BlockB::new(p / "Mixed_6a", 288),
            c: [
                BlockC::new(p / "Mixed_6b", 768, 128),
                BlockC::new(p / "Mixed_6c", 768, 160),
                BlockC::new(p / "Mixed_6d", 768, 160),
                BlockC::new(p / "Mixed_6e", 768, 192),
            ],
            d: BlockD::new(p / "Mixed_7a", 768),
            e: [BlockE::new(p / "Mixed_7b", 1280, false), BlockE::new(p / "Mixed_7c", 2048, true)],
        }
    }

    /// Pooled features `[N, 2048]` of unit-range images `[N, 1 or 3, H, W]`,
    /// preprocessed as pytorch-fid does (resize to 299, scale to [−1, 1]).
    pub fn features(&self, unit: &Tensor) -> Tensor {
        let s = unit.size();
        let x = if s[1] == 1 { unit.expand([s[0], 3, s[2], s[3]], false) } else { unit.shallow_clone() };
        let x = if s[2] != INCEPTION_SIZE || s[3] != INCEPTION_SIZE {
            x.upsample_bilinear2d([INCEPTION_SIZE, INCEPTION_SIZE], false, None, None)
        } else {
            x
        };
        let mut y = &x * 2.0 - 1.0;
        let pool = |t: &Tensor| t.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        y = self.stem[2].f(&self.stem[1].f(&self.stem[0].f(&y)));
        y = pool(&y);
        y = pool(&self.stem[4].f(&self.stem[3].f(&y)));
        for a in &self.a {
            y = a.f(&y);
        }
        y = self.b.f(&y);
        for c in &self.c {
            y = c.f(&y);
        }
        y = self.d.f(&y);
        for e in &self.e {
            y = e.f(&y);
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}
