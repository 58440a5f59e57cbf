//! The HTTP side: one shared client, the endpoint URLs, and turning answers
//! into outcomes the tally understands.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

/// Long enough for an 8,190-transfer batch on a busy server, short enough
/// that a wedged server does not hang the bench forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting to a local server either works at once or not at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of an unexpected answer's body to keep for the report.
const BODY_SAMPLE_CHARS: usize = 200;

/// The server's endpoints and the one client every task shares, so that
/// connections are pooled and kept alive instead of reopened per request.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    pub transfer: Url,
    pub transfers: Url,
    pub openings: Url,
    pub deposit: Url,
}

impl Api {
    /// Builds the client for `target`. `pool` is the number of concurrent
    /// requests, so every task keeps its own idle keep-alive connection.
    pub fn new(target: &str, token: Option<&str>, pool: usize) -> anyhow::Result<Self> {
        let base = parse_target(target)?;
        let client = Client::builder()
            // Only ever talk to the target given: never route via a proxy
            // picked up from the environment.
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .default_headers(auth_headers(token)?)
            .build()
            .context("building the HTTP client")?;
        let endpoint = |path: &str| {
            base.join(path)
                .with_context(|| format!("joining {path} to {base}"))
        };
        Ok(Self {
            client,
            transfer: endpoint("v1/wallet/balance_transfer")?,
            transfers: endpoint("v1/wallet/balance_transfers")?,
            openings: endpoint("v1/wallet/account_openings")?,
            deposit: endpoint("v1/wallet/deposit")?,
        })
    }

    /// A POST to `url`, authenticated by the default headers.
    pub fn post(&self, url: &Url) -> RequestBuilder {
        self.client.post(url.clone())
    }
}

/// Accepts exactly the target the user gave, as a base URL. Only plain
/// HTTP: the client is built without TLS.
fn parse_target(target: &str) -> anyhow::Result<Url> {
    let mut url =
        Url::parse(target).with_context(|| format!("--target {target:?} is not a URL"))?;
    ensure!(
        url.scheme() == "http",
        "--target must be an http:// URL (this build has no TLS), got {target:?}"
    );
    ensure!(url.host_str().is_some(), "--target {target:?} has no host");
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--target {target:?} must not have a query or fragment");
    }
    // A base without a trailing slash would make `join` replace its last
    // path segment instead of appending to it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The bearer token as a default header, marked sensitive so it never shows
/// up in debug output.
fn auth_headers(token: Option<&str>) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token contains characters not allowed in a header")?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

/// What one request achieved.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server answered for the transfers it was sent: how many moved,
    /// how many were refused by the rules, and how many items had a status
    /// the bench does not recognise (or were missing from the answer).
    Answered {
        ok: u64,
        rejected: u64,
        unknown: u64,
    },
    /// 429 or 503: the server asked us to back off.
    Throttled { retry_after: Option<Duration> },
    /// A transport error or an answer that is neither success, rejection nor
    /// back-off; the string says which, for the report.
    Failed(String),
}

/// One item of the batch endpoint's answer; only the status matters here.
#[derive(Debug, Deserialize)]
struct BatchAnswer {
    results: Vec<ItemAnswer>,
}

#[derive(Debug, Deserialize)]
struct ItemAnswer {
    status: ItemStatus,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ItemStatus {
    Success,
    Failed,
    #[serde(other)]
    Other,
}

/// Sends a request carrying `items` transfers (`batch` says which endpoint
/// shape to expect) and classifies the answer. The body is always read in
/// full so the connection goes back to the pool.
pub async fn send(request: RequestBuilder, items: usize, batch: bool) -> Outcome {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("transport: {}", error_chain(&e))),
    };
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return Outcome::Failed(format!("reading the answer: {}", error_chain(&e))),
    };
    classify(status, retry_after, &body, items as u64, batch)
}

/// Maps status and body to an [`Outcome`]; separate from `send` so it can be
/// tested without a server.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    items: u64,
    batch: bool,
) -> Outcome {
    match status.as_u16() {
        200 | 201 if batch => count_batch(body, items),
        200 | 201 => Outcome::Answered {
            ok: 1,
            rejected: 0,
            unknown: 0,
        },
        422 => Outcome::Answered {
            ok: 0,
            rejected: items,
            unknown: 0,
        },
        429 | 503 => Outcome::Throttled { retry_after },
        _ => Outcome::Failed(format!("HTTP {status}: {}", body_sample(body))),
    }
}

/// Counts per-item results of a batch answer.
fn count_batch(body: &[u8], items: u64) -> Outcome {
    let answer: BatchAnswer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(e) => return Outcome::Failed(format!("unreadable batch answer: {e}")),
    };
    let (mut ok, mut rejected, mut unknown) = (0, 0, 0);
    for item in &answer.results {
        match item.status {
            ItemStatus::Success => ok += 1,
            ItemStatus::Failed => rejected += 1,
            ItemStatus::Other => unknown += 1,
        }
    }
    unknown += items.saturating_sub(answer.results.len() as u64);
    Outcome::Answered {
        ok,
        rejected,
        unknown,
    }
}

/// `Retry-After` in its delta-seconds form; the HTTP-date form is not worth
/// a date parser here and falls back to the caller's default.
pub fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An error with its causes: reqwest's own message ("error sending
/// request") hides the useful part (refused, timed out, reset).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a body, for error messages.
pub fn body_sample(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(BODY_SAMPLE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_taken_as_given_and_paths_appended() {
        let api = Api::new("http://127.0.0.1:8080", None, 4).expect("valid");
        assert_eq!(
            api.transfer.as_str(),
            "http://127.0.0.1:8080/v1/wallet/balance_transfer"
        );
        let api = Api::new("http://localhost:9000/edge", Some("t"), 4).expect("valid");
        assert_eq!(
            api.transfers.as_str(),
            "http://localhost:9000/edge/v1/wallet/balance_transfers"
        );
        assert!(Api::new("https://127.0.0.1:8080", None, 4).is_err());
        assert!(Api::new("127.0.0.1:8080", None, 4).is_err());
        assert!(Api::new("http://127.0.0.1:8080/?x=1", None, 4).is_err());
        assert!(Api::new("http://127.0.0.1:8080", Some("bad\ntoken"), 4).is_err());
    }

    #[test]
    fn single_answers_are_classified() {
        let ok = classify(StatusCode::OK, None, b"{}", 1, false);
        assert_eq!(
            ok,
            Outcome::Answered {
                ok: 1,
                rejected: 0,
                unknown: 0
            }
        );
        let no = classify(StatusCode::UNPROCESSABLE_ENTITY, None, b"{}", 1, false);
        assert_eq!(
            no,
            Outcome::Answered {
                ok: 0,
                rejected: 1,
                unknown: 0
            }
        );
        let wait = Some(Duration::from_secs(1));
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, wait, b"", 1, false),
            Outcome::Throttled { retry_after: wait }
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, b"no token", 1, false),
            Outcome::Failed(msg) if msg.contains("401") && msg.contains("no token")
        ));
    }

    #[test]
    fn batch_answers_are_counted_per_item() {
        let body = br#"{"results": [
            {"status": "success", "transaction_id": "a"},
            {"status": "failed", "transaction_id": "b", "reason": "insufficient_funds"},
            {"status": "pending", "transaction_id": "c"},
            {"status": "success", "transaction_id": "d"}
        ]}"#;
        assert_eq!(
            classify(StatusCode::OK, None, body, 5, true),
            Outcome::Answered {
                ok: 2,
                rejected: 1,
                unknown: 2
            }
        );
        assert!(matches!(
            classify(StatusCode::OK, None, b"not json", 5, true),
            Outcome::Failed(_)
        ));
    }
}
