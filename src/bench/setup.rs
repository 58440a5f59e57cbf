//! Creating and funding the bench accounts before the measured run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use indicatif::ProgressBar;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::task::JoinSet;

use super::api::{Api, body_sample, retry_after};
use super::progress;
use super::workload::{DepositBody, NewAccountBody, Plan};

/// Attempts per setup request before giving up: setup must survive a
/// leader election or a burst of 429s, but not wait forever on a dead server.
const MAX_ATTEMPTS: u32 = 8;

/// First back-off when the server gave no `Retry-After`; doubles per attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Upper bound for any single wait, whatever `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Creates accounts `{prefix}-0..accounts` and funds each one, with
/// `setup_concurrency` accounts in flight (each account is create, then
/// deposit). Returns how long it took. The first hard failure (bad token,
/// invalid request) stops setup: repeating it 100,000 times tells nobody
/// anything more.
pub async fn run(api: &Arc<Api>, plan: &Arc<Plan>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let bar = progress::counter(plan.accounts, "setting up accounts")?;
    let next = Arc::new(AtomicU64::new(0));
    let width = u64::try_from(plan.setup_concurrency)
        .unwrap_or(u64::MAX)
        .min(plan.accounts);
    let mut workers = JoinSet::new();
    for _ in 0..width {
        workers.spawn(worker(api.clone(), plan.clone(), next.clone(), bar.clone()));
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined.context("a setup task panicked").and_then(|r| r) {
            bar.abandon();
            return Err(e.context("setting up the bench accounts"));
        }
    }
    let took = started.elapsed();
    bar.finish_with_message(format!("set up in {:.1} s", took.as_secs_f64()));
    Ok(took)
}

/// Takes account indexes from the shared counter until none are left.
async fn worker(
    api: Arc<Api>,
    plan: Arc<Plan>,
    next: Arc<AtomicU64>,
    bar: ProgressBar,
) -> anyhow::Result<()> {
    let funding = plan.funding_amount();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.accounts {
            return Ok(());
        }
        set_up_account(&api, &plan, i, &funding).await?;
        bar.inc(1);
    }
}

/// Creates account `i` (409: it already exists, fine) and deposits
/// `funding` into it under a deterministic transaction id.
async fn set_up_account(api: &Api, plan: &Plan, i: u64, funding: &str) -> anyhow::Result<()> {
    let account_id = plan.account_id(i);
    let create = NewAccountBody {
        account_id: &account_id,
    };
    let (status, body) = post_retrying(api, &api.accounts, &create).await?;
    if !(status.is_success() || status == StatusCode::CONFLICT) {
        bail!("creating account {account_id}: HTTP {status}: {body}");
    }
    let transaction_id = plan.deposit_id(i);
    let deposit = DepositBody {
        account_id: &account_id,
        amount: funding,
        currency: &plan.currency,
        transaction_id: &transaction_id,
    };
    let (status, body) = post_retrying(api, &api.deposit, &deposit).await?;
    ensure!(
        status.is_success(),
        "funding account {account_id}: HTTP {status}: {body}"
    );
    Ok(())
}

/// POSTs `body`, retrying transport errors, 429 and 503. Retrying is safe:
/// account creation answers 409 the second time and deposits are
/// idempotent by transaction id. Returns the final status and the start of
/// the body.
async fn post_retrying<T: Serialize + ?Sized>(
    api: &Api,
    url: &Url,
    body: &T,
) -> anyhow::Result<(StatusCode, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let wait = match api.post(url).json(body).send().await {
            Ok(response) if is_back_off(response.status()) => retry_after(&response),
            Ok(response) => {
                let status = response.status();
                let text = response.bytes().await.context("reading the answer")?;
                return Ok((status, body_sample(&text)));
            }
            Err(e) if attempt >= MAX_ATTEMPTS => {
                return Err(e).with_context(|| format!("POST {url}"));
            }
            Err(_) => None,
        };
        if attempt >= MAX_ATTEMPTS {
            bail!("POST {url}: still throttled after {MAX_ATTEMPTS} attempts");
        }
        tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt)).min(MAX_BACKOFF)).await;
    }
}

/// 429 and 503 mean "try again later" (overloaded or leaderless).
fn is_back_off(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
}

/// Exponential back-off for attempt `n` (1-based).
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_by_the_caller() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(400));
        assert!(backoff(60).min(MAX_BACKOFF) == MAX_BACKOFF);
    }
}
