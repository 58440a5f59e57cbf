//! Creating and funding the bench accounts before the measured run.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::api::{Api, body_sample, retry_after};
use super::progress;
use super::workload::{
    BatchBody, DepositBody, MAX_BATCH, NewAccountBody, OpeningsBody, Plan, TransferBody,
};

/// Attempts per setup request before giving up: setup must survive a
/// leader election or a burst of 429s, but not wait forever on a dead server.
const MAX_ATTEMPTS: u32 = 8;

/// First back-off when the server gave no `Retry-After`; doubles per attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Upper bound for any single wait, whatever `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Creates accounts `{prefix}-0..accounts` a batch at a time and funds
/// them: one deposit into account 0 of every account's funding, then
/// batches of transfers from account 0 to each other account, with
/// `setup_concurrency` requests in flight. Returns how long it took. The
/// first hard failure (bad token, invalid request) stops setup: repeating
/// it 100,000 times tells nobody anything more.
pub async fn run(api: &Arc<Api>, plan: &Arc<Plan>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    in_batches(api, plan, 0, "opening accounts", open_batch).await?;
    let pool = DepositBody {
        account_id: &plan.account_id(0),
        amount: &plan.pool_amount(),
        currency: &plan.currency,
        transaction_id: &plan.pool_deposit_id(),
    };
    let (status, body) = post_retrying(api, &api.deposit, &pool).await?;
    ensure!(
        status.is_success(),
        "funding account 0: HTTP {status}: {}",
        body_sample(&body)
    );
    in_batches(api, plan, 1, "funding accounts", fund_batch).await?;
    Ok(started.elapsed())
}

/// Accounts `first..accounts` in batches of [`MAX_BATCH`], each handed to
/// `step`, with `setup_concurrency` batches in flight.
async fn in_batches<F, Fut>(
    api: &Arc<Api>,
    plan: &Arc<Plan>,
    first: u64,
    what: &str,
    step: F,
) -> anyhow::Result<()>
where
    F: Fn(Arc<Api>, Arc<Plan>, Range<u64>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let count = plan.accounts.saturating_sub(first);
    let bar = progress::counter(count, what)?;
    let next = Arc::new(AtomicU64::new(first));
    let batches = count.div_ceil(MAX_BATCH as u64);
    let width = u64::try_from(plan.setup_concurrency)
        .unwrap_or(u64::MAX)
        .min(batches);
    let mut workers = JoinSet::new();
    for _ in 0..width {
        let (api, plan, next, bar) = (api.clone(), plan.clone(), next.clone(), bar.clone());
        workers.spawn(async move {
            loop {
                let start = next.fetch_add(MAX_BATCH as u64, Ordering::Relaxed);
                if start >= plan.accounts {
                    return Ok(());
                }
                let end = (start + MAX_BATCH as u64).min(plan.accounts);
                step(api.clone(), plan.clone(), start..end).await?;
                bar.inc(end - start);
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined.context("a setup task panicked").and_then(|r| r) {
            bar.abandon();
            return Err(e.context("setting up the bench accounts"));
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Opens accounts `range`; one that exists already is fine.
async fn open_batch(api: Arc<Api>, plan: Arc<Plan>, range: Range<u64>) -> anyhow::Result<()> {
    let body = OpeningsBody {
        accounts: range
            .map(|i| NewAccountBody {
                account_id: plan.account_id(i),
            })
            .collect(),
    };
    for (item, result) in body
        .accounts
        .iter()
        .zip(post_batch(&api, &api.openings, &body, body.accounts.len()).await?)
    {
        let exists = result.reason.as_deref() == Some("account_exists");
        if result.status != "opened" && !exists {
            bail!("opening account {}: {result:?}", item.account_id);
        }
    }
    Ok(())
}

/// Moves each account of `range` its funding from account 0.
async fn fund_batch(api: Arc<Api>, plan: Arc<Plan>, range: Range<u64>) -> anyhow::Result<()> {
    let amount = plan.funding_amount();
    let body = BatchBody {
        transfers: range
            .map(|i| TransferBody {
                from_account: plan.account_id(0),
                to_account: plan.account_id(i),
                amount: amount.clone(),
                currency: &plan.currency,
                transaction_id: plan.funding_id(i),
            })
            .collect(),
    };
    for (item, result) in body
        .transfers
        .iter()
        .zip(post_batch(&api, &api.transfers, &body, body.transfers.len()).await?)
    {
        ensure!(
            result.status == "success",
            "funding account {}: {result:?}",
            item.to_account
        );
    }
    Ok(())
}

/// One item of a batch endpoint's answer.
#[derive(Debug, Deserialize)]
struct ItemResult {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchResults {
    results: Vec<ItemResult>,
}

/// POSTs a batch of `items` and returns its results, one per item (an
/// answer with another count is an error, not a shorter check).
async fn post_batch<T: Serialize>(
    api: &Api,
    url: &Url,
    body: &T,
    items: usize,
) -> anyhow::Result<Vec<ItemResult>> {
    let (status, text) = post_retrying(api, url, body).await?;
    ensure!(
        status.is_success(),
        "POST {url}: HTTP {status}: {}",
        body_sample(&text)
    );
    let answer: BatchResults = serde_json::from_slice(&text).with_context(|| {
        format!(
            "POST {url}: an answer that is not a batch's: {}",
            body_sample(&text)
        )
    })?;
    ensure!(
        answer.results.len() == items,
        "POST {url}: {} results for {items} items",
        answer.results.len()
    );
    Ok(answer.results)
}

/// POSTs `body`, retrying transport errors, 429 and 503. Retrying is safe:
/// account opening answers `account_exists` the second time and money
/// moves are idempotent by transaction id. Returns the final status and
/// body.
async fn post_retrying<T: Serialize + ?Sized>(
    api: &Api,
    url: &Url,
    body: &T,
) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let wait = match api.post(url).json(body).send().await {
            Ok(response) if is_back_off(response.status()) => retry_after(&response),
            Ok(response) => {
                let status = response.status();
                let body = response.bytes().await.context("reading the answer")?;
                let body = body.to_vec();
                return Ok((status, body));
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
