//! Seeds of the torch generator: one per step (and per rank), so that a
//! step's augmentations and shuffles do not depend on what ran before and a
//! resumed run repeats the uninterrupted one.

/// Seed of the torch generator before step `step`.
pub fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// A run's seed as rank `rank` of a data-parallel job uses it (rank 0: `seed` itself).
pub fn rank_seed(seed: u64, rank: usize) -> u64 {
    seed ^ (rank as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}
