//! A GRPO run that has stopped learning: when nearly every group's
//! completions earn the same reward, advantages are zero and so is the
//! update, however long the run goes on.

use super::GrpoStats;

/// Share of zero-spread groups above which a step teaches (almost) nothing.
pub const ZERO_SPREAD_SHARE: f64 = 0.9;
/// Consecutive such steps before the run is warned about.
pub const ZERO_SPREAD_STEPS: usize = 20;

/// Counts consecutive steps with more than `ZERO_SPREAD_SHARE` zero-spread groups.
#[derive(Default)]
pub struct SpreadWatch {
    run: usize,
}

impl SpreadWatch {
    /// The warning to log after `step`, once per `ZERO_SPREAD_STEPS` such steps in a row.
    pub fn observe(&mut self, step: usize, stats: &GrpoStats) -> Option<String> {
        if stats.zero_spread <= ZERO_SPREAD_SHARE {
            self.run = 0;
            return None;
        }
        self.run += 1;
        self.run.is_multiple_of(ZERO_SPREAD_STEPS).then(|| {
            format!(
                "warning: {} steps in a row up to step {step} had over {:.0}% zero-spread groups (every completion of a prompt earned the same reward), \
                 so the advantages and the update were (nearly) zero: the run is not learning. Sample more diverse completions \
                 (a larger --group, a higher --temperature) or train on questions the model sometimes gets right",
                self.run,
                100.0 * ZERO_SPREAD_SHARE
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_after_twenty_steps_without_spread_and_not_before() {
        let stats = |z: f64| GrpoStats { zero_spread: z, ..Default::default() };
        let mut watch = SpreadWatch::default();
        let warned: Vec<usize> = (1..=45).filter(|&s| watch.observe(s, &stats(if s == 30 { 0.5 } else { 1.0 })).is_some()).collect();
        // Steps 1-20 warn at 20; step 30 has spread, so the next 20 end at 50.
        assert_eq!(warned, [20]);
        let mut watch = SpreadWatch::default();
        assert!((1..=19).all(|s| watch.observe(s, &stats(0.95)).is_none()));
        assert!(watch.observe(20, &stats(0.95)).unwrap().contains("20 steps in a row up to step 20"));
        let mut watch = SpreadWatch::default();
        assert!((1..=40).all(|s| watch.observe(s, &stats(0.9)).is_none()), "90% exactly is not over 90%");
    }
}
