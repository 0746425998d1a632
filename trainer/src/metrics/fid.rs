//! Fréchet distance between two sets of image features (FID when the
//! features are Inception-v3's), and the feature extraction behind
//! `chess-train fid`.
//!
//! `FD = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2}` with unbiased
//! covariances (`numpy.cov(rowvar=False)`). `tr (Σ₁Σ₂)^{1/2}` is the sum of
//! the square roots of the eigenvalues of Σ₁Σ₂; those are real and ≥ 0, and
//! equal to the eigenvalues of a symmetric PSD matrix, which is what is
//! decomposed here (symmetric eigensolvers are exact about realness;
//! round-off negatives are clipped at 0):
//! - in general `Σ₁^{1/2} Σ₂ Σ₁^{1/2}` (d × d);
//! - when a set has n ≤ d vectors (its centred rows `A`, `Σ₁ = AᵀA/(n−1)`
//!   are kept), `A Σ₂ Aᵀ/(n−1)` (n × n), whose eigenvalues are the nonzero
//!   ones of Σ₁Σ₂. Exact, cheap, and free of the d − n round-off
//!   eigenvalues whose square roots bias the d × d route (and `sqrtm`) on
//!   small sets.
//!
//! The decompositions run in libtorch (LAPACK, f64, CPU): the trainer links
//! it anyway, it takes seconds at 2048×2048 even in debug builds, and a
//! pure-Rust Jacobi would take minutes at that size.
//!
//! Features (2048-d, pooled): pytorch-fid's FID Inception-v3
//! ([`crate::models::inception`]; only these give values comparable to published
//! FIDs, with the FID weights), or ResNet-50 with CheSS or ImageNet weights
//! (safetensors with torchvision names, as `chess-train export` / `import`
//! write them). The report says which features were used.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chess_shards::loader::{Loader, LoaderOptions};
use tch::nn::{self};
use tch::{Device, Kind, Tensor};

use super::MetricsError;
use crate::io::weights;
use crate::models::inception::{FidInception, INCEPTION_SIZE};
use crate::models::resnet::{Arch, HeadKind, ResNet};
use crate::{data, Result, TrainError};

/// Gaussian statistics of a feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// Number of feature vectors.
    pub n: usize,
    pub dim: usize,
    pub mean: Vec<f64>,
    /// Row-major `dim × dim` unbiased covariance (divided by n − 1).
    pub cov: Vec<f64>,
    /// The centred vectors (row-major `n × dim`) when `n ≤ dim`, for the
    /// exact small-set formula; `None` for larger sets.
    pub centred: Option<Vec<f64>>,
}

/// Streams feature batches into mean and covariance without keeping them:
/// sums of `x − shift` and `(x − shift)(x − shift)ᵀ` in f64, the shift being
/// the first batch's mean (so the covariance does not cancel catastrophically).
pub struct FeatureAccumulator {
    dim: i64,
    n: i64,
    shift: Option<Tensor>,
    sum: Tensor,
    outer: Tensor,
    /// The rows themselves while there are at most `dim` of them.
    kept: Vec<Tensor>,
}

impl FeatureAccumulator {
    pub fn new(dim: usize) -> Self {
        let d = dim as i64;
        let opts = (Kind::Double, Device::Cpu);
        FeatureAccumulator {
            dim: d,
            n: 0,
            shift: None,
            sum: Tensor::zeros([d], opts),
            outer: Tensor::zeros([d, d], opts),
            kept: Vec::new(),
        }
    }

    /// Adds the rows of `x` (`[N, dim]`, any float kind and device).
    pub fn add(&mut self, x: &Tensor) -> Result<()> {
        let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
        let s = x.size();
        if s.len() != 2 || s[1] != self.dim {
            return Err(MetricsError::Invalid(format!("features of shape {s:?}, expected [N, {}]", self.dim)).into());
        }
        if s[0] == 0 {
            return Ok(());
        }
        if x.isfinite().logical_not().any().int64_value(&[]) != 0 {
            return Err(MetricsError::Invalid("a feature vector holds NaN or infinity".into()).into());
        }
        let shift = self.shift.get_or_insert_with(|| x.mean_dim(0, false, Kind::Double));
        let c = &x - &*shift;
        self.sum += c.sum_dim_intlist(0, false, Kind::Double);
        self.outer += c.tr().mm(&c);
        self.n += s[0];
        if self.n <= self.dim {
            self.kept.push(x);
        } else {
            self.kept.clear();
        }
        Ok(())
    }

    /// Mean and covariance; needs at least two rows.
    pub fn finish(&self) -> Result<FeatureStats> {
        if self.n < 2 {
            return Err(
                MetricsError::Invalid(format!("{} feature vector(s): a covariance needs at least 2", self.n)).into()
            );
        }
        let n = self.n as f64;
        let shift = self.shift.as_ref().expect("set with the first rows");
        let m = &self.sum / n;
        let cov = (&self.outer - m.outer(&m) * n) / (n - 1.0);
        let mean = &m + shift;
        let centred = if self.kept.is_empty() { None } else { Some(to_vec(&(Tensor::cat(&self.kept, 0) - &mean))?) };
        Ok(FeatureStats {
            n: self.n as usize,
            dim: self.dim as usize,
            mean: to_vec(&mean)?,
            cov: to_vec(&((&cov + cov.tr()) * 0.5))?,
            centred,
        })
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(t.contiguous().view([-1]))?)
}

impl FeatureStats {
    /// Statistics of `rows` (row-major, `dim` values per row).
    pub fn from_rows(rows: &[f64], dim: usize) -> Result<FeatureStats> {
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            return Err(MetricsError::Invalid(format!("{} values do not make rows of {dim}", rows.len())).into());
        }
        let mut acc = FeatureAccumulator::new(dim);
        acc.add(&Tensor::from_slice(rows).view([-1, dim as i64]))?;
        acc.finish()
    }

    /// The same statistics without the centred rows: [`frechet_distance`]
    /// then takes the general d × d route.
    pub fn without_rows(self) -> FeatureStats {
        FeatureStats { centred: None, ..self }
    }

    fn tensors(&self) -> (Tensor, Tensor) {
        let d = self.dim as i64;
        (Tensor::from_slice(&self.mean), Tensor::from_slice(&self.cov).view([d, d]))
    }
}

/// The Fréchet distance between two feature sets' Gaussians (≥ 0 up to
/// round-off).
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    if a.dim != b.dim {
        return Err(MetricsError::LengthMismatch {
            what: "Fréchet distance: feature dimensions",
            left: a.dim,
            right: b.dim,
        }
        .into());
    }
    let ((mu1, s1), (mu2, s2)) = (a.tensors(), b.tensors());
    let diff = &mu1 - &mu2;
    let mean_term = diff.dot(&diff).double_value(&[]);
    // The smaller set whose centred rows are at hand, if any.
    let small = [(a, &s2), (b, &s1)].into_iter().filter(|(x, _)| x.centred.is_some()).min_by_key(|(x, _)| x.n);
    let m = match small {
        Some((x, other)) => {
            let rows = Tensor::from_slice(x.centred.as_deref().expect("filtered")).view([x.n as i64, x.dim as i64]);
            rows.mm(other).mm(&rows.tr()) / (x.n as f64 - 1.0)
        }
        None => {
            // Σ₁^{1/2} = V diag(√λ) Vᵀ (λ clipped at 0: Σ₁ is PSD).
            let (w, v) = s1.f_linalg_eigh("L")?;
            let root1 = (&v * w.clamp_min(0.0).sqrt().unsqueeze(0)).mm(&v.tr());
            root1.mm(&s2).mm(&root1)
        }
    };
    let m = (&m + m.tr()) * 0.5;
    let eig = m.f_linalg_eigvalsh("L")?;
    let tr_covmean = eig.clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[]);
    let fd = mean_term + s1.trace().double_value(&[]) + s2.trace().double_value(&[]) - 2.0 * tr_covmean;
    Ok(fd)
}

/// Which network gives the features.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureSpec {
    /// A CheSS/MoCo ResNet-50 encoder (`chess-train export`), CheSS normalisation.
    Chess(PathBuf),
    /// An ImageNet ResNet-50 (torchvision names; a 3-channel conv1 is summed
    /// over RGB as `chess-train import` does), ImageNet normalisation
    /// averaged over RGB.
    Imagenet(PathBuf),
    /// pytorch-fid's FID Inception-v3 (torchvision names; its `fc` is ignored).
    Inception(PathBuf),
}

impl FromStr for FeatureSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) =
            s.split_once('=').ok_or_else(|| format!("`{s}`: expected chess=FILE, imagenet=FILE or inception=FILE"))?;
        let path = PathBuf::from(path);
        match kind {
            "chess" => Ok(FeatureSpec::Chess(path)),
            "imagenet" => Ok(FeatureSpec::Imagenet(path)),
            "inception" => Ok(FeatureSpec::Inception(path)),
            other => Err(format!("unknown feature network `{other}` (chess, imagenet or inception)")),
        }
    }
}

impl FeatureSpec {
    /// The normalisation (mean, std) applied to unit-range images.
    fn normalisation(&self) -> (f64, f64) {
        match self {
            // CheSS's pretraining statistics (config defaults).
            FeatureSpec::Chess(_) => (0.658, 0.221),
            // Inception scales to [−1, 1] itself.
            FeatureSpec::Inception(_) => (0.0, 1.0),
            // torchvision's ImageNet mean/std, averaged over R, G, B.
            FeatureSpec::Imagenet(_) => ((0.485 + 0.456 + 0.406) / 3.0, (0.229 + 0.224 + 0.225) / 3.0),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            FeatureSpec::Chess(p) => format!("CheSS ResNet-50 pooled features (2048-d) from {}", p.display()),
            FeatureSpec::Imagenet(p) => format!("ImageNet ResNet-50 pooled features (2048-d) from {}", p.display()),
            FeatureSpec::Inception(p) => {
                format!("FID Inception-v3 pooled features (2048-d, pytorch-fid) from {}", p.display())
            }
        }
    }
}

/// The network behind a [`FeatureNet`].
enum Network {
    // Boxed: both hold many layer structs inline.
    ResNet(Box<ResNet>),
    Inception(Box<FidInception>),
}

/// A frozen feature extractor (eval mode).
pub struct FeatureNet {
    model: Network,
    _vs: nn::VarStore,
    device: Device,
    size: i64,
    mean: f64,
    std: f64,
}

impl FeatureNet {
    /// Loads the weights of `spec`; ResNet input is resized to `size` (≤ 0
    /// keeps it), Inception input always to 299 (as pytorch-fid).
    pub fn load(spec: &FeatureSpec, size: i64, device: Device) -> Result<FeatureNet> {
        let path = match spec {
            FeatureSpec::Chess(p) | FeatureSpec::Imagenet(p) => p,
            FeatureSpec::Inception(p) => {
                let t = weights::read(p)?;
                let vs = nn::VarStore::new(device);
                let model = FidInception::new(&vs.root());
                weights::load_into(&vs, &t, "", p, false)?;
                return Ok(FeatureNet {
                    model: Network::Inception(Box::new(model)),
                    _vs: vs,
                    device,
                    size: INCEPTION_SIZE,
                    mean: 0.0,
                    std: 1.0,
                });
            }
        };
        let mut t = weights::read(path)?;
        if let Some(w) = t.get("conv1.weight") {
            let s = w.size();
            if s.len() == 4 && s[1] == 3 {
                // RGB conv1 → one grey channel, as `chess-train import` converts it.
                let grey = w.sum_dim_intlist(1, true, w.kind());
                t.insert("conv1.weight".into(), grey);
            }
        }
        // `encoder_q.` (a checkpoint's prefix) or plain torchvision names.
        let prefix = if t.contains_key("encoder_q.conv1.weight") { "encoder_q." } else { "" };
        let vs = nn::VarStore::new(device);
        let model = ResNet::new(&vs.root(), Arch::Resnet50, HeadKind::None);
        weights::load_into(&vs, &t, prefix, path, false)?;
        let (mean, std) = spec.normalisation();
        Ok(FeatureNet { model: Network::ResNet(Box::new(model)), _vs: vs, device, size, mean, std })
    }

    /// One unit-range image `[1, 1, H, W]` brought to the network's input
    /// size: antialiased for ResNet (as training), plain bilinear for
    /// Inception (as pytorch-fid's `F.interpolate`).
    pub fn prepare(&self, unit: &Tensor) -> Tensor {
        match &self.model {
            Network::ResNet(_) => data::resize(unit, self.size),
            Network::Inception(_) => unit.upsample_bilinear2d([self.size, self.size], false, None, None),
        }
    }

    /// Pooled features `[N, 2048]` (CPU) of unit-range images `[N, 1, H, W]`.
    pub fn features(&self, unit: &Tensor) -> Tensor {
        let unit = unit.to_device(self.device);
        let f = tch::no_grad(|| match &self.model {
            Network::ResNet(m) => {
                m.features_t(&data::normalise(&data::resize(&unit, self.size), self.mean, self.std), false)
            }
            Network::Inception(m) => m.features(&unit),
        });
        f.to_device(Device::Cpu)
    }

    /// Whether these are the FID Inception's features.
    pub fn is_inception(&self) -> bool {
        matches!(self.model, Network::Inception(_))
    }
}

/// A set of images: a dataset directory / URL / manifest, or a directory of PNGs.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Dataset(String),
    PngDir(PathBuf),
}

impl ImageSource {
    /// A directory holding `.png` files and no `dataset.json` is a PNG
    /// directory; anything else goes to the loader.
    pub fn parse(s: &str) -> ImageSource {
        let p = Path::new(s);
        if p.is_dir() && !p.join("dataset.json").exists() {
            ImageSource::PngDir(p.to_path_buf())
        } else {
            ImageSource::Dataset(s.to_string())
        }
    }
}

/// The `.png` files of `dir`, sorted by name.
pub fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(crate::read_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TrainError::Input { path: dir.to_path_buf(), msg: "no .png files in this directory".into() });
    }
    Ok(files)
}

/// A PNG as a unit-range `[1, 1, H, W]` float tensor: grey kept, colour
/// to luma (ITU-R 601), 8- or 16-bit.
pub fn read_png_unit(path: &Path) -> Result<Tensor> {
    let bad = |msg: String| TrainError::Input { path: path.to_path_buf(), msg };
    let bytes = std::fs::read(path).map_err(crate::read_err(path))?;
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(|e| bad(format!("PNG: {e}")))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad("PNG: image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(format!("PNG: {e}")))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(bad("PNG: palette not expanded".into())),
    };
    let (bps, max) = match info.bit_depth {
        png::BitDepth::Sixteen => (2, 65535.0),
        png::BitDepth::Eight => (1, 255.0),
        other => return Err(bad(format!("PNG: unexpected depth {other:?}"))),
    };
    let (h, w) = (info.height as usize, info.width as usize);
    let sample = |row: &[u8], x: usize, c: usize| -> f32 {
        let o = (x * channels + c) * bps;
        (if bps == 2 { u16::from_be_bytes([row[o], row[o + 1]]) as f32 } else { row[o] as f32 }) / max
    };
    let mut values = Vec::with_capacity(h * w);
    for y in 0..h {
        let row = &buf[y * info.line_size..];
        for x in 0..w {
            values.push(if channels >= 3 {
                0.299 * sample(row, x, 0) + 0.587 * sample(row, x, 1) + 0.114 * sample(row, x, 2)
            } else {
                sample(row, x, 0)
            });
        }
    }
    Ok(Tensor::from_slice(&values).view([1, 1, h as i64, w as i64]))
}

/// Feature statistics of every image of `source`.
pub fn source_stats(
    net: &FeatureNet,
    source: &ImageSource,
    batch_size: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<FeatureStats> {
    let mut acc = FeatureAccumulator::new(2048);
    match source {
        ImageSource::Dataset(input) => {
            let opts = LoaderOptions { batch_size: batch_size.max(1), shuffle: false, ..LoaderOptions::default() };
            let loader = Loader::open(input, opts)?;
            let total = loader.len() as u64;
            let mut done = 0;
            for batch in &mut loader.epoch(0) {
                let batch = batch?;
                // Full resolution here: FeatureNet resizes on the device.
                acc.add(&net.features(&data::upload(&batch, net.device).to_unit(0)))?;
                done += batch.len() as u64;
                progress(done, total);
            }
        }
        ImageSource::PngDir(dir) => {
            let files = png_files(dir)?;
            let total = files.len() as u64;
            for (i, chunk) in files.chunks(batch_size.max(1)).enumerate() {
                // Each image to the network size first, so that sizes may differ.
                let imgs =
                    chunk.iter().map(|f| Ok(net.prepare(&read_png_unit(f)?))).collect::<Result<Vec<Tensor>>>()?;
                let shapes: Vec<Vec<i64>> = imgs.iter().map(|t| t.size()).collect();
                if shapes.iter().any(|s| s != &shapes[0]) {
                    return Err(TrainError::Input {
                        path: dir.clone(),
                        msg: "PNGs of different sizes: pass --size to resize them".into(),
                    });
                }
                acc.add(&net.features(&Tensor::cat(&imgs, 0)))?;
                progress((i * batch_size.max(1) + chunk.len()) as u64, total);
            }
        }
    }
    acc.finish()
}

/// What `chess-train fid` found.
#[derive(Debug, Clone)]
pub struct FidReport {
    pub fid: f64,
    pub real: usize,
    pub fake: usize,
    pub features: String,
    /// FID Inception features (comparable to published FIDs given its weights).
    pub inception: bool,
}

/// FID-style Fréchet distance between the images of `real` and `fake`.
pub fn fid(
    real: &str,
    fake: &str,
    spec: &FeatureSpec,
    size: i64,
    device: Device,
    batch_size: usize,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<FidReport> {
    let net = FeatureNet::load(spec, size, device)?;
    let a = source_stats(&net, &ImageSource::parse(real), batch_size, |d, t| progress("real", d, t))?;
    let b = source_stats(&net, &ImageSource::parse(fake), batch_size, |d, t| progress("fake", d, t))?;
    Ok(FidReport {
        fid: frechet_distance(&a, &b)?,
        real: a.n,
        fake: b.n,
        features: spec.describe(),
        inception: net.is_inception(),
    })
}
