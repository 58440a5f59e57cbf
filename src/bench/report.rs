//! Counting what happened and summarising it.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::api::Outcome;
use super::workload::Plan;

/// What one client task saw. Each task owns its tally, so recording costs
/// no synchronisation; tallies are merged once at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests the server answered for (success or rejection); these are
    /// the ones with a latency sample.
    pub answered: u64,
    pub transfers_ok: u64,
    pub rejected: u64,
    /// Failed requests, plus answered requests with unrecognised items.
    pub errors: u64,
    pub throttled: u64,
    /// Latency of each answered request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The first error seen, so a report of "100% errors" says why.
    pub first_error: Option<String>,
}

impl Tally {
    /// Records one request's outcome and how long it took.
    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        match outcome {
            Outcome::Answered {
                ok,
                rejected,
                unknown,
            } => {
                self.answered += 1;
                self.transfers_ok += ok;
                self.rejected += rejected;
                let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
                self.latencies_us.push(micros);
                if *unknown > 0 {
                    self.error(format!("{unknown} transfers with an unrecognised result"));
                }
            }
            Outcome::Throttled { .. } => self.throttled += 1,
            Outcome::Failed(why) => self.error(why.clone()),
        }
    }

    fn error(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }

    /// Folds another client's tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.answered += other.answered;
        self.transfers_ok += other.transfers_ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
        self.throttled += other.throttled;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The `num/den` quantile of ascending `sorted` samples by nearest rank
/// (the smallest sample with at least that share of samples at or below
/// it). Integer arithmetic, so p99.9 of 1,000 samples is exactly the
/// 999th. `None` when there are no samples.
pub fn percentile(sorted: &[u32], num: u64, den: u64) -> Option<u32> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (num * n).div_ceil(den).clamp(1, n);
    sorted.get((rank - 1) as usize).copied()
}

/// Request latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Summarises samples in microseconds (sorts them in place).
    pub fn from_micros(samples: &mut [u32]) -> Self {
        samples.sort_unstable();
        let ms = |v: Option<u32>| v.map_or(0.0, |us| f64::from(us) / 1000.0);
        Self {
            p50_ms: ms(percentile(samples, 1, 2)),
            p99_ms: ms(percentile(samples, 99, 100)),
            p999_ms: ms(percentile(samples, 999, 1000)),
            max_ms: ms(samples.last().copied()),
        }
    }
}

/// The result of `wallet bench`. Rates are per second of wall time from the
/// first request to the last answer.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub target: String,
    pub clients: usize,
    /// 0: the single-transfer endpoint; otherwise transfers per request.
    pub batch: usize,
    pub accounts: u64,
    pub hot_share: f64,
    pub currency: String,
    pub seed: u64,
    /// Seconds spent creating and funding accounts; `None` with `--skip-setup`.
    pub setup_seconds: Option<f64>,
    pub wall_seconds: f64,
    /// Transfers that moved money.
    pub transfers_ok: u64,
    /// Transfers the rules refused (422 or per-item `failed`).
    pub rejected: u64,
    /// Requests answered with success or rejection.
    pub requests: u64,
    /// Requests that failed (transport, unexpected status, unreadable answer).
    pub errors: u64,
    /// Requests answered 429/503.
    pub throttled: u64,
    pub transfers_per_sec: f64,
    pub requests_per_sec: f64,
    /// Per request (a whole batch when batching).
    pub latency: Latency,
    pub first_error: Option<String>,
    /// Device bytes the server wrote per transfer ok (`--server-pid`).
    pub disk_bytes_per_transfer: Option<f64>,
}

impl BenchReport {
    /// Builds the report from the merged tally.
    pub fn new(
        target: &str,
        plan: &Plan,
        mut tally: Tally,
        wall: Duration,
        setup: Option<Duration>,
    ) -> Self {
        let wall_seconds = wall.as_secs_f64();
        let rate = |count: u64| {
            if wall_seconds > 0.0 {
                count as f64 / wall_seconds
            } else {
                0.0
            }
        };
        Self {
            target: target.to_owned(),
            clients: plan.clients,
            batch: plan.batch,
            accounts: plan.accounts,
            hot_share: plan.hot_share,
            currency: plan.currency.clone(),
            seed: plan.seed,
            setup_seconds: setup.map(|d| d.as_secs_f64()),
            wall_seconds,
            transfers_ok: tally.transfers_ok,
            rejected: tally.rejected,
            requests: tally.answered,
            errors: tally.errors,
            throttled: tally.throttled,
            transfers_per_sec: rate(tally.transfers_ok),
            requests_per_sec: rate(tally.answered),
            latency: Latency::from_micros(&mut tally.latencies_us),
            first_error: tally.first_error,
            disk_bytes_per_transfer: None,
        }
    }

    /// The report as one line of JSON, for scripts.
    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = if self.batch == 0 {
            "single".to_owned()
        } else {
            format!("batch of {}", self.batch)
        };
        writeln!(
            f,
            "wallet bench → {}: {} clients, {endpoint}, {} accounts, hot share {:.2}, {}",
            self.target, self.clients, self.accounts, self.hot_share, self.currency
        )?;
        if let Some(setup) = self.setup_seconds {
            writeln!(f, "  setup          {setup:>12.1} s")?;
        }
        writeln!(f, "  wall time      {:>12.2} s", self.wall_seconds)?;
        writeln!(f, "  transfers/s    {:>12.1}", self.transfers_per_sec)?;
        writeln!(f, "  requests/s     {:>12.1}", self.requests_per_sec)?;
        writeln!(f, "  transfers ok   {:>12}", self.transfers_ok)?;
        writeln!(f, "  rejected       {:>12}", self.rejected)?;
        writeln!(f, "  errors         {:>12}", self.errors)?;
        writeln!(f, "  throttled      {:>12}", self.throttled)?;
        let l = &self.latency;
        writeln!(
            f,
            "  latency ms     p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        )?;
        if let Some(bytes) = self.disk_bytes_per_transfer {
            writeln!(f, "  disk bytes/tx  {bytes:>12.0}")?;
        }
        if let Some(why) = &self.first_error {
            writeln!(f, "  first error    {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 1, 2), Some(500));
        assert_eq!(percentile(&samples, 99, 100), Some(990));
        assert_eq!(percentile(&samples, 999, 1000), Some(999));
        assert_eq!(percentile(&samples, 1, 1), Some(1000));
        assert_eq!(percentile(&samples, 0, 1), Some(1));
        assert_eq!(percentile(&[7], 999, 1000), Some(7));
        assert_eq!(percentile(&[3, 9], 1, 2), Some(3));
        assert_eq!(percentile(&[], 1, 2), None);
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 999, 1000), Some(100));
    }

    #[test]
    fn latency_sorts_and_converts_to_ms() {
        let mut samples = vec![5_000, 1_000, 3_000, 2_000, 4_000];
        let l = Latency::from_micros(&mut samples);
        assert_eq!(l.p50_ms, 3.0);
        assert_eq!(l.p99_ms, 5.0);
        assert_eq!(l.max_ms, 5.0);
        assert_eq!(Latency::from_micros(&mut []), Latency::default());
    }

    #[test]
    fn tallies_record_and_merge() {
        let ms = Duration::from_millis(2);
        let mut a = Tally::default();
        a.record(
            &Outcome::Answered {
                ok: 3,
                rejected: 1,
                unknown: 0,
            },
            ms,
        );
        a.record(&Outcome::Throttled { retry_after: None }, ms);
        let mut b = Tally::default();
        b.record(&Outcome::Failed("boom".into()), ms);
        b.record(
            &Outcome::Answered {
                ok: 1,
                rejected: 0,
                unknown: 2,
            },
            ms,
        );
        a.merge(b);
        assert_eq!(a.answered, 2);
        assert_eq!(a.transfers_ok, 4);
        assert_eq!(a.rejected, 1);
        assert_eq!(a.errors, 2);
        assert_eq!(a.throttled, 1);
        assert_eq!(a.latencies_us, [2_000, 2_000]);
        assert_eq!(a.first_error.as_deref(), Some("boom"));
    }
}
