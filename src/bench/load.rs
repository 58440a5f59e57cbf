//! The measured phase: `clients` tasks sending transfers until the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use reqwest::RequestBuilder;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::api::{self, Api, Outcome};
use super::progress;
use super::report::Tally;
use super::rng::SplitMix64;
use super::workload::{BatchBody, IdGen, Plan};

/// Longest pause for a 429/503, whatever `Retry-After` asks: the bench
/// should measure back-pressure, not sit out the run.
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// Pause for a 429/503 without `Retry-After`.
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_millis(100);

/// Pause after a failed request, so a dead server is not spun against.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How often the live rate is refreshed.
const TICK: Duration = Duration::from_millis(500);

/// Runs the load and returns every client's merged tally and the wall time
/// from the first request to the last answer.
pub async fn run(api: &Arc<Api>, plan: &Arc<Plan>) -> anyhow::Result<(Tally, Duration)> {
    let live = Arc::new(AtomicU64::new(0));
    let nonce = IdGen::run_nonce();
    let mut seeds = SplitMix64::new(plan.seed);
    let bar = progress::timer(plan.duration)?;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let ticker = tokio::spawn(show_progress(bar.clone(), live.clone(), start));
    let mut clients = JoinSet::new();
    for stream in 0..plan.clients as u64 {
        let client = LoadClient {
            api: api.clone(),
            plan: plan.clone(),
            live: live.clone(),
            rng: seeds.split(),
            ids: IdGen::new(nonce, stream),
            deadline,
        };
        clients.spawn(client.run());
    }
    let mut tally = Tally::default();
    while let Some(joined) = clients.join_next().await {
        tally.merge(joined.context("a load client task panicked")?);
    }
    let wall = start.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    Ok((tally, wall))
}

/// One simulated client: its own random stream, its own tally.
struct LoadClient {
    api: Arc<Api>,
    plan: Arc<Plan>,
    /// Successful transfers across all clients, for the live rate only.
    live: Arc<AtomicU64>,
    rng: SplitMix64,
    ids: IdGen,
    deadline: Instant,
}

impl LoadClient {
    /// Sends requests back to back until the deadline. A request in flight
    /// at the deadline is allowed to finish and is counted.
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        let items = self.plan.transfers_per_request();
        let batch = self.plan.batch > 0;
        while Instant::now() < self.deadline {
            // The body is built before the clock starts: latency is the
            // server's (and the network's), not our serialisation.
            let request = self.next_request();
            let started = Instant::now();
            let outcome = api::send(request, items, batch).await;
            tally.record(&outcome, started.elapsed());
            self.after(&outcome).await;
        }
        tally
    }

    /// The next request: one transfer, or a batch of `plan.batch`.
    fn next_request(&mut self) -> RequestBuilder {
        let plan = &self.plan;
        if plan.batch == 0 {
            let body = plan.transfer(&mut self.rng, &mut self.ids);
            return self.api.post(&self.api.transfer).json(&body);
        }
        let transfers = (0..plan.batch)
            .map(|_| plan.transfer(&mut self.rng, &mut self.ids))
            .collect();
        self.api
            .post(&self.api.transfers)
            .json(&BatchBody { transfers })
    }

    /// Publishes progress and backs off when the server asked for it or
    /// the request failed, never past the deadline.
    async fn after(&self, outcome: &Outcome) {
        let pause = match outcome {
            Outcome::Answered { ok, .. } => {
                self.live.fetch_add(*ok, Ordering::Relaxed);
                return;
            }
            Outcome::Throttled { retry_after } => retry_after
                .unwrap_or(DEFAULT_THROTTLE_PAUSE)
                .min(MAX_THROTTLE_PAUSE),
            Outcome::Failed(_) => ERROR_PAUSE,
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(pause.min(remaining)).await;
    }
}

/// Moves the bar with the clock and shows the transfers/s of the last tick.
async fn show_progress(bar: ProgressBar, live: Arc<AtomicU64>, start: Instant) {
    let mut ticks = tokio::time::interval(TICK);
    let mut last = (start, 0u64);
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let done = live.load(Ordering::Relaxed);
        let seconds = now.duration_since(last.0).as_secs_f64();
        if seconds > 0.0 {
            let rate = done.saturating_sub(last.1) as f64 / seconds;
            bar.set_message(format!("{rate:>10.0} transfers/s  {done} ok"));
        }
        last = (now, done);
        let elapsed = now.duration_since(start).as_millis();
        bar.set_position(u64::try_from(elapsed).unwrap_or(u64::MAX));
    }
}
