//! Axis ticks: where plotters puts them, and a label format that prints
//! each one distinctly (`0.000 … 0.030`, not `0.03, 0.03, 0.02`).

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;

/// How the tick labels of one axis are printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TickFormat {
    /// Fixed point with this many decimals (`0.005`).
    Fixed(usize),
    /// Scientific with this many mantissa decimals (`2.5e-5`).
    Scientific(usize),
    /// Divided by `scale` with a suffix (`20k`, `1.5M`), this many decimals.
    Scaled { scale: f64, suffix: char, decimals: usize },
}

impl TickFormat {
    /// The format for ticks `ticks` (ascending, evenly spaced): the fewest
    /// decimals that print each tick to within a thousandth of the step.
    pub fn for_ticks(ticks: &[f64]) -> TickFormat {
        let largest = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        if largest == 0.0 || !largest.is_finite() {
            return TickFormat::Fixed(0);
        }
        let step = ticks.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
        let step = if step.is_finite() && step > 0.0 { step } else { largest };
        let tolerance = step * 1e-3;
        let decimals_for = |scale: f64| {
            (0..=12)
                .find(|&d| {
                    let unit = 10f64.powi(d as i32);
                    ticks.iter().all(|t| ((t / scale * unit).round() / unit * scale - t).abs() <= tolerance)
                })
                .unwrap_or(12)
        };
        if largest >= 1e4 {
            let (scale, suffix) = if largest >= 1e9 {
                (1e9, 'G')
            } else if largest >= 1e6 {
                (1e6, 'M')
            } else {
                (1e3, 'k')
            };
            return TickFormat::Scaled { scale, suffix, decimals: decimals_for(scale) };
        }
        match decimals_for(1.0) {
            d if d <= 4 => TickFormat::Fixed(d),
            _ => {
                // Mantissa decimals: the step's digits below the largest tick's exponent.
                let exponent = largest.log10().floor();
                let digits = (exponent - step.log10().floor()).max(0.0) as usize;
                TickFormat::Scientific(digits.min(12))
            }
        }
    }

    /// `value` as a label; values within a millionth of the step of zero print as zero.
    pub fn format(&self, value: f64) -> String {
        match *self {
            TickFormat::Fixed(d) => {
                let s = format!("{value:.d$}");
                // "-0.000" for a rounding residue below zero
                if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                    s[1..].to_string()
                } else {
                    s
                }
            }
            TickFormat::Scientific(_) if value == 0.0 => "0".into(),
            TickFormat::Scientific(d) => format!("{value:.d$e}"),
            TickFormat::Scaled { .. } if value == 0.0 => "0".into(),
            TickFormat::Scaled { scale, suffix, decimals } => format!("{:.decimals$}{suffix}", value / scale),
        }
    }
}

/// The ticks plotters draws on an axis over `range` with at most `max_ticks`
/// labels, and the format that prints them distinctly.
pub(crate) fn axis_ticks(range: (f64, f64), max_ticks: usize) -> (Vec<f64>, TickFormat) {
    let coord = RangedCoordf64::from(range.0..range.1);
    let mut ticks = coord.key_points(max_ticks);
    // Snap float residues (1e-18 for 0) so they print as the tick they are.
    let step = ticks.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    if step.is_finite() {
        for t in &mut ticks {
            if t.abs() < step * 1e-9 {
                *t = 0.0;
            }
        }
    }
    let format = TickFormat::for_ticks(&ticks);
    (ticks, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(range: (f64, f64), max_ticks: usize) -> Vec<String> {
        let (ticks, format) = axis_ticks(range, max_ticks);
        ticks.iter().map(|&t| format.format(t)).collect()
    }

    fn assert_distinct(labels: &[String]) {
        let set: std::collections::BTreeSet<&String> = labels.iter().collect();
        assert_eq!(set.len(), labels.len(), "duplicated tick labels: {labels:?}");
        assert!(labels.len() >= 3, "too few ticks: {labels:?}");
    }

    #[test]
    fn tick_labels_are_distinct_and_readable() {
        // The learning-rate axis of the issue: 0.03 down to 0.
        let lr = labels((-0.0015, 0.0315), 8);
        assert_distinct(&lr);
        assert_eq!(lr, ["0.000", "0.005", "0.010", "0.015", "0.020", "0.025", "0.030"]);
        assert_distinct(&labels((0.0, 3e-5), 6));
        assert!(labels((0.0, 3e-5), 6).iter().any(|l| l.contains('e')), "small values in scientific notation");
        assert_eq!(labels((0.0, 120_000.0), 8), ["0", "20k", "40k", "60k", "80k", "100k", "120k"]);
        assert_eq!(labels((0.0, 100.0), 6), ["0", "20", "40", "60", "80", "100"]);
        assert_distinct(&labels((0.999, 1.001), 6));
        assert_distinct(&labels((-2.5, 2.5), 8));
        assert_eq!(labels((0.0, 2.5e6), 6), ["0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"]);
    }
}
