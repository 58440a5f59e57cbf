//! Every failure the edge answers with, as `{"error": "<code>", "message":
//! "..."}` and the right status and headers.

use crate::service::{MembershipError, ReadError, SubmitError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable snake_case code.
    pub code: &'static str,
    pub message: String,
    /// Adds `Retry-After: 1`.
    pub retry_after: bool,
    /// A refusal of the movement with this transaction id, answered as an
    /// outcome (`{"status": "failed", "transaction_id", "reason"}`).
    pub refusal_of: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: false,
            refusal_of: None,
        }
    }

    /// 422: a well-formed movement that cannot be taken, answered like the
    /// rules' refusals.
    pub fn refusal(
        transaction_id: &uuid::Uuid,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        error.refusal_of = Some(transaction_id.to_string());
        error
    }

    /// 400: the request is malformed or invalid; nothing was submitted.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503: a call reached a partition that no longer holds its account;
    /// a retry is routed again (and answered from the first outcome if it
    /// ran after all).
    pub fn moved() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "moved",
            "the account moved to another partition while the call was on its way; retry",
        );
        error.retry_after = true;
        error
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500; the details go to the log, not to the client.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request is safe to retry",
        )
    }

    /// Prefixes the message, e.g. with the index of a batch item.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    fn retry(mut self) -> Self {
        self.retry_after = true;
        self
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Overloaded { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                format!("{error}; retry later with the same transaction_id"),
            )
            .retry(),
            SubmitError::NotLeader { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_leader",
                format!("{error}; retry later with the same transaction_id"),
            )
            .retry(),
            SubmitError::NoQuorum(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_quorum",
                format!("{error}; retry later with the same transaction_id"),
            )
            .retry(),
            SubmitError::InsufficientStorage { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                format!(
                    "{error}; writes resume when space returns; retry with the same transaction_id"
                ),
            )
            .retry(),
            SubmitError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down; retry with the same transaction_id",
            )
            .retry(),
            SubmitError::Stopped(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopped",
                format!("{error}; retry with the same transaction_id"),
            )
            .retry(),
            SubmitError::Diverged(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "diverged",
                format!("{error}; retry on another member with the same transaction_id"),
            )
            .retry(),
            SubmitError::Internal(why) => ApiError::internal(why),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NotCaughtUp { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_caught_up",
                error.to_string(),
            )
            .retry(),
            ReadError::Beyond { .. } | ReadError::NoPartition { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "position_unknown",
                error.to_string(),
            ),
            // A split may add it here after another member answered with it.
            ReadError::UnknownPartition(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_caught_up",
                error.to_string(),
            )
            .retry(),
            ReadError::NoQuorum(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_quorum",
                error.to_string(),
            )
            .retry(),
            ReadError::Diverged(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "diverged",
                error.to_string(),
            )
            .retry(),
            ReadError::Failed(why) => ApiError::internal(why),
        }
    }
}

impl From<MembershipError> for ApiError {
    fn from(error: MembershipError) -> Self {
        match error {
            MembershipError::NotLeader { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_leader",
                error.to_string(),
            )
            .retry(),
            MembershipError::Refused(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "membership_refused",
                error.to_string(),
            ),
            MembershipError::Unavailable(cause) => {
                let mut unavailable = ApiError::from(cause.clone());
                unavailable.message = format!("{cause}; retry the change");
                unavailable
            }
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(error: crate::Error) -> Self {
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.refusal_of {
            Some(id) => {
                Json(json!({"status": "failed", "transaction_id": id, "reason": self.code}))
            }
            None => Json(json!({"error": self.code, "message": self.message})),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica change the partition cannot take now is answered like a
    /// write would be (here: 503 on a fenced member), not as a refusal.
    #[test]
    fn an_unavailable_partition_answers_a_membership_change_as_a_write() {
        let fenced = MembershipError::Unavailable(SubmitError::Diverged("chains differ".into()));
        let answer = ApiError::from(fenced);
        assert_eq!(
            (answer.status, answer.code, answer.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, "diverged", true)
        );
        assert!(
            answer.message.ends_with("retry the change"),
            "{}",
            answer.message
        );
        let refused = ApiError::from(MembershipError::Refused("no such node".into()));
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
