//! A tiny seeded generator (splitmix64).
//!
//! A benchmark run must be reproducible from one `--seed`, and the root
//! package has no `rand` dependency; splitmix64 is a few lines, fast, and
//! statistically good enough to choose accounts and amounts.

/// Weyl-sequence increment from the splitmix64 reference implementation.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64: a 64-bit counter pushed through an avalanche mix.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift: no division on the
    /// hot path, and the bias (at most n / 2^64) is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A value in `[0, 1)` built from the top 53 bits, so every value is an
    /// exactly representable f64.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An independent-looking child generator, so each client task gets its
    /// own deterministic stream without sharing (and locking) one generator.
    pub fn split(&mut self) -> Self {
        Self::new(self.next_u64())
    }
}

/// The splitmix64 output function (also a good 64-bit hash finaliser).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes: a stable, dependency-free hash for deriving ids from
/// names (std's `DefaultHasher` is not guaranteed stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_vector() {
        // Published splitmix64 outputs for seed 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..100).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn split_streams_are_deterministic_and_distinct() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let (mut a1, mut a2) = (a.split(), a.split());
        let mut b1 = b.split();
        let x: Vec<u64> = (0..10).map(|_| a1.next_u64()).collect();
        let y: Vec<u64> = (0..10).map(|_| b1.next_u64()).collect();
        let z: Vec<u64> = (0..10).map(|_| a2.next_u64()).collect();
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn below_and_f64_stay_in_range() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            let v = rng.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert!(seen.iter().all(|&s| s), "every value in 0..7 appears");
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xAF63_DC4C_8601_EC8C);
    }
}
