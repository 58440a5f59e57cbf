//! State-machine versions: list (admins and auditors), deploy, verify,
//! activate and cancel a scheduled activation (admins). Deploying and activating are log entries (`crate::sm::
//! VersionChange`) taken by the leader; a deploy is checked here first (it
//! compiles, imports nothing, and instantiates), so a component that could
//! never run is refused before it reaches the log.

use super::AppState;
use super::auth::{Admin, Caller};
use super::errors::ApiError;
use super::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use super::input::present;
use super::position::stamp;
use crate::audit::Window;
use crate::service::WalletService;
use crate::sm::{VersionChange, VersionHash, VersionInfo, VersionOutcome, VersionRefused};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use wallet_core::Role;

#[derive(Debug, Serialize)]
pub struct VersionList {
    versions: Vec<VersionInfo>,
}

/// `GET /v1/admin/versions`: every deployed version, oldest first.
pub async fn list<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
) -> Result<Json<VersionList>, ApiError> {
    if !matches!(who.role, Role::Admin | Role::Auditor) {
        return Err(ApiError::forbidden(
            "listing versions takes an admin or auditor token",
        ));
    }
    Ok(Json(VersionList {
        versions: state.service.versions(),
    }))
}

/// `POST /v1/admin/versions` with the component's bytes: 201 when it is
/// new, 200 when it was deployed before; 422 for a component that cannot
/// run here.
pub async fn deploy<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiBytes(bytes): ApiBytes,
) -> Result<Response, ApiError> {
    state.service.check_version(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_version",
            e.to_string(),
        )
    })?;
    let (outcome, positions) = state
        .service
        .change_versions(VersionChange::Deploy(bytes.to_vec()))
        .await?;
    let VersionOutcome::Deployed { hash, index, new } = outcome else {
        return Err(unexpected(&outcome));
    };
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({"hash": hash, "deployed_at": index, "new": new});
    Ok(stamp((status, Json(body)).into_response(), &positions))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The first log index the version runs; the entry after the
    /// activation's by default.
    #[serde(default, deserialize_with = "present")]
    at_index: Option<u64>,
    /// Activates a version without an identical verification; recorded in
    /// the log.
    #[serde(default, deserialize_with = "present")]
    force_reason: Option<String>,
}

/// The longest reason a forced activation may give.
const REASON_BYTES_MAX: usize = 1024;

/// `POST /v1/admin/versions/{hash}/activate`: 200 with the index it runs
/// from; 404 for a version never deployed; 409 when refused.
pub async fn activate<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(hash): ApiPath,
    ApiJson(body): ApiJson<ActivateRequest>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    if body
        .force_reason
        .as_ref()
        .is_some_and(|r| r.len() > REASON_BYTES_MAX)
    {
        return Err(ApiError::bad_request(
            "invalid_reason",
            format!("a reason is at most {REASON_BYTES_MAX} bytes"),
        ));
    }
    let change = VersionChange::Activate {
        hash,
        at: body.at_index,
        force: body.force_reason,
    };
    let (outcome, positions) = state.service.change_versions(change).await?;
    match outcome {
        VersionOutcome::Activated { hash, from } => Ok(stamp(
            Json(json!({"hash": hash, "active_from": from})).into_response(),
            &positions,
        )),
        VersionOutcome::Refused(refused) => Err(refusal(&refused)),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/admin/versions/{hash}/cancel`: withdraws an activation of
/// the version the log has not reached yet; 200 with the index it would
/// have run from; 404 for a version never deployed; 409 `not_scheduled`
/// when it has no such activation (the log may have reached it).
pub async fn cancel<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(hash): ApiPath,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let change = VersionChange::Cancel { hash };
    let (outcome, positions) = state.service.change_versions(change).await?;
    match outcome {
        VersionOutcome::Cancelled { hash, from } => Ok(stamp(
            Json(json!({"hash": hash, "cancelled_from": from})).into_response(),
            &positions,
        )),
        VersionOutcome::Refused(refused) => Err(refusal(&refused)),
        other => Err(unexpected(&other)),
    }
}

/// How often a verification reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// `genesis` (the default) or `snapshot`: the member's current one.
    #[serde(default)]
    from: Window,
}

/// `POST /v1/admin/versions/{hash}/verify[?from=snapshot]`: replays this
/// member's recorded history, all of it or the entries after its current
/// snapshot, through the version beside the versions that ran it, and
/// records the outcome in the log (on the leader). Answers a stream of
/// JSON lines: `{"progress": {"index", "through"}}` while it runs, then
/// `{"report": {...}, "recorded_at": POSITION}`, or `{"error", "message"}`.
pub async fn verify<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(hash): ApiPath,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    if !state.service.versions().iter().any(|v| v.hash == hash) {
        return Err(ApiError::not_found(
            "version_not_found",
            format!("version {hash} is not deployed"),
        ));
    }
    if query.from == Window::Snapshot && state.service.snapshot_index().is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_snapshot",
            "this member holds no snapshot yet to start a verification at",
        ));
    }
    let (lines, body) = mpsc::channel::<Bytes>(16);
    tokio::spawn(verify_into(state.service, hash, query.from, lines));
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        let line = body.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(line), body))
    });
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Runs the verification, sending its lines; a client that hangs up does
/// not stop it, so its outcome is still recorded.
async fn verify_into<S: WalletService>(
    service: std::sync::Arc<S>,
    hash: VersionHash,
    window: Window,
    lines: mpsc::Sender<Bytes>,
) {
    let send = |value: serde_json::Value| {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        let lines = lines.clone();
        async move {
            let _ = lines.send(Bytes::from(line)).await;
        }
    };
    let (progress, seen) = watch::channel((0, 0));
    let verifying = service.verify(hash, window, progress);
    tokio::pin!(verifying);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let report = loop {
        tokio::select! {
            report = &mut verifying => break report,
            _ = tick.tick() => {
                let (index, through) = *seen.borrow();
                send(json!({"progress": {"index": index, "through": through}})).await;
            }
        }
    };
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!(%hash, %error, "a verification failed");
            let code = match error {
                crate::Error::ArchiveGap { .. } => "archive_incomplete",
                crate::Error::NoSnapshot => "no_snapshot",
                crate::Error::EmptyWindow { .. } => "empty_window",
                crate::Error::MigrationFailed { .. } => "migration_failed",
                _ => "verification_failed",
            };
            send(json!({"error": code, "message": error.to_string()})).await;
            return;
        }
    };
    match service.change_versions(report.change()).await {
        Ok((_, positions)) => {
            send(json!({"report": report, "recorded_at": positions.to_string()})).await;
        }
        Err(error) => {
            send(json!({"report": report, "error": "not_recorded", "message": error.to_string()}))
                .await;
        }
    }
}

fn parse_hash(text: &str) -> Result<VersionHash, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_version_hash",
            "a version is named by 64 hex digits (its SHA-256)",
        )
    })
}

fn refusal(refused: &VersionRefused) -> ApiError {
    let code = match refused {
        VersionRefused::NotDeployed(_) => {
            return ApiError::not_found("version_not_found", refused.to_string());
        }
        VersionRefused::NoReason => {
            return ApiError::bad_request("invalid_reason", refused.to_string());
        }
        VersionRefused::PastIndex { .. } => "index_passed",
        VersionRefused::AlreadyActive(_) => "already_active",
        VersionRefused::Pending { .. } => "activation_pending",
        VersionRefused::NotVerified(_) => "not_verified",
        VersionRefused::FirstAtIndex => "first_activation_at_index",
        VersionRefused::OlderVerification { .. } => "older_verification",
        VersionRefused::NotScheduled(_) => "not_scheduled",
    };
    ApiError::new(StatusCode::CONFLICT, code, refused.to_string())
}

fn unexpected(outcome: &VersionOutcome) -> ApiError {
    ApiError::internal(format!("a version change applied as {outcome:?}; retry"))
}
