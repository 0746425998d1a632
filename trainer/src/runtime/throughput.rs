//! Throughput of a training loop, measured one way by every command that
//! trains (pretrain, finetune and the sweep's runs, bone-suppression,
//! nodule-gen): images per second of training time, and the shares of that
//! time spent waiting for data (the loader, or the in-memory batch on its
//! way to the device) and in the optimizer step. A [`StepClock`] adds up a
//! window of steps (a logged step, an epoch) and the whole run; what is not
//! training (validation, the kNN monitor) stays outside the windows.
//!
//! The times are host times: on CUDA a step's kernels are waited for when
//! its loss is read, so data wait is exact while the optimizer share counts
//! the launches.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The share of training time waiting for data above which a run warns.
pub const DATA_WAIT_WARN: f64 = 0.10;

/// Where a command's batches come from, for the advice on a starved run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// The streaming loader (pretrain, finetune): decoding keeps up or not.
    Loader,
    /// Samples held in memory, stacked and copied per batch (bone-suppression, nodule-gen).
    Memory,
}

impl DataSource {
    fn remedy(self) -> &'static str {
        match self {
            DataSource::Loader => {
                "raise `decode_threads` in the config's [data] section (0 = one per core) \
                 or read the dataset from faster storage"
            }
            DataSource::Memory => {
                "its samples are in memory and each batch is stacked and copied to the device: \
                 raise `--batch-size` (fewer, larger copies)"
            }
        }
    }
}

/// Images/s and time shares of a window of steps or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Training images per second.
    pub images_per_s: f64,
    /// Share (0–1) of the training time spent waiting for data.
    pub data_wait: f64,
    /// Share (0–1) of the training time spent in the optimizer step.
    pub optimizer: f64,
}

impl Throughput {
    fn of(t: &Totals) -> Throughput {
        let secs = t.secs.max(1e-9);
        Throughput {
            images_per_s: t.images as f64 / secs,
            data_wait: (t.wait / secs).clamp(0.0, 1.0),
            optimizer: (t.optimizer / secs).clamp(0.0, 1.0),
        }
    }

    /// The line every command's run summary prints.
    pub fn summary_line(&self) -> String {
        format!(
            "throughput: {:.1} img/s, data wait {:.1}%, optimizer {:.1}% of training time",
            self.images_per_s,
            100.0 * self.data_wait,
            100.0 * self.optimizer
        )
    }

    /// When data wait exceeds [`DATA_WAIT_WARN`]: what to say, naming the setting to raise.
    pub fn data_wait_advice(&self, device: &str, source: DataSource) -> Option<String> {
        (self.data_wait > DATA_WAIT_WARN).then(|| {
            format!(
                "the data kept {device} waiting {:.0}% of the training time (over {:.0}%): {}",
                100.0 * self.data_wait,
                100.0 * DATA_WAIT_WARN,
                source.remedy()
            )
        })
    }

    /// Logs [`Throughput::data_wait_advice`] as a warning, if any.
    pub fn warn_if_starved(&self, device: &str, source: DataSource) {
        if let Some(a) = self.data_wait_advice(device, source) {
            tracing::warn!("{a}");
        }
    }
}

/// Seconds and images added up over steps.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    secs: f64,
    images: u64,
    wait: f64,
    optimizer: f64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.secs += o.secs;
        self.images += o.images;
        self.wait += o.wait;
        self.optimizer += o.optimizer;
    }
}

/// Times a training loop: the open window (since the last
/// [`StepClock::close_window`] or [`StepClock::restart`]) and the run.
#[derive(Debug, Clone)]
pub struct StepClock {
    window_start: Instant,
    window: Totals,
    run: Totals,
}

impl Default for StepClock {
    fn default() -> Self {
        StepClock::new()
    }
}

impl StepClock {
    /// A clock whose first window starts now.
    pub fn new() -> StepClock {
        StepClock { window_start: Instant::now(), window: Totals::default(), run: Totals::default() }
    }

    /// Runs `f` (fetching a batch) and counts its time as data wait.
    pub fn wait<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let v = f();
        self.window.wait += t.elapsed().as_secs_f64();
        v
    }

    /// Runs `f` (an optimizer step) and counts its time as optimizer time.
    pub fn optimizer<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let v = f();
        self.add_optimizer(t.elapsed().as_secs_f64());
        v
    }

    /// Optimizer seconds measured elsewhere (e.g. inside a model's step).
    pub fn add_optimizer(&mut self, secs: f64) {
        self.window.optimizer += secs;
    }

    /// `n` images trained on.
    pub fn images(&mut self, n: u64) {
        self.window.images += n;
    }

    /// Leaves `d`, spent inside the window on something other than
    /// training (the kNN monitor), out of its time.
    pub fn exclude(&mut self, d: Duration) {
        self.window_start += d;
    }

    /// Starts the window's time now: what ran since the last close
    /// (validation between epochs) is not training time.
    pub fn restart(&mut self) {
        self.window_start = Instant::now();
    }

    fn open_window(&self) -> Totals {
        Totals { secs: self.window_start.elapsed().as_secs_f64(), ..self.window }
    }

    /// The open window so far.
    pub fn window(&self) -> Throughput {
        Throughput::of(&self.open_window())
    }

    /// Ends the window: its figures, added to the run's; the next starts now.
    pub fn close_window(&mut self) -> Throughput {
        let w = self.open_window();
        self.run.add(&w);
        self.window = Totals::default();
        self.window_start = Instant::now();
        Throughput::of(&w)
    }

    /// The closed windows together.
    pub fn run(&self) -> Throughput {
        Throughput::of(&self.run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_of_the_training_time_and_clamped() {
        let t = Throughput::of(&Totals { secs: 4.0, images: 100, wait: 1.0, optimizer: 0.5 });
        assert_eq!(t, Throughput { images_per_s: 25.0, data_wait: 0.25, optimizer: 0.125 });
        let t = Throughput::of(&Totals { secs: 1.0, images: 1, wait: 3.0, optimizer: 2.0 });
        assert_eq!((t.data_wait, t.optimizer), (1.0, 1.0));
        assert_eq!(Throughput::of(&Totals::default()).images_per_s, 0.0);
    }

    #[test]
    fn the_run_adds_up_closed_windows_only() {
        let mut c = StepClock::new();
        c.images(8);
        c.add_optimizer(0.0);
        c.close_window();
        c.images(4);
        assert_eq!(c.run.images, 8, "an open window is not in the run");
        c.close_window();
        assert_eq!(c.run.images, 12);
        assert_eq!(c.window.images, 0);
        // Excluded time leaves the window: a window started in the future has no time yet.
        c.exclude(Duration::from_secs(3600));
        assert_eq!(c.open_window().secs, 0.0);
    }

    #[test]
    fn data_wait_over_ten_percent_names_the_setting() {
        let mut t = Throughput { images_per_s: 10.0, data_wait: 0.25, optimizer: 0.1 };
        let a = t.data_wait_advice("cpu", DataSource::Loader).unwrap();
        assert!(a.contains("25%") && a.contains("decode_threads") && a.contains("cpu"), "{a}");
        let a = t.data_wait_advice("cuda:0", DataSource::Memory).unwrap();
        assert!(a.contains("--batch-size") && a.contains("cuda:0"), "{a}");
        t.data_wait = 0.05;
        assert!(t.data_wait_advice("cpu", DataSource::Loader).is_none());
        assert!(t.summary_line().contains("10.0 img/s, data wait 5.0%, optimizer 10.0%"), "{}", t.summary_line());
    }
}
