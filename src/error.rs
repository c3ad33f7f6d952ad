//! The one error type every handler returns. Each variant maps to a status
//! code and the contract's body: `{"success": false, "error": "...", "code": "..."}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400 `invalid_input`).
    #[error("{0}")]
    InvalidInput(String),
    /// Invalid input with its own stable code, e.g. `invalid_type` (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No or wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The route is switched off here (403).
    #[error("{0}")]
    Forbidden(String),
    /// The body is not JSON by its content type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body exceeds the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An unknown model, symbol, id or route (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A route that exists without this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Valid input that cannot be served, e.g. too few prices (422).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// The caller holds too much of something the server caps (429).
    #[error("{message}")]
    TooMany { code: &'static str, message: String },
    /// The caller is over its rate limit (429).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// No data provider could answer and nothing is cached (503).
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// The server is at capacity for this kind of work (503).
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// The request took longer than the configured budget (503).
    #[error("{0}")]
    Timeout(String),
    /// A bug. The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidInput(message.into())
    }

    /// One error for several symbols that failed: the most severe kind
    /// (a provider outage over an unknown symbol over bad input), naming
    /// every symbol and why.
    pub fn of_symbols(failed: Vec<(String, ApiError)>) -> Self {
        let message = format!(
            "{} symbol(s) could not be priced: {}",
            failed.len(),
            failed
                .iter()
                .map(|(symbol, e)| format!("{symbol}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let worst = failed
            .into_iter()
            .map(|(_, e)| e)
            .max_by_key(|e| e.status().as_u16());
        match worst {
            Some(e) => e.with_message(message),
            None => ApiError::Internal("no symbol failed".into()),
        }
    }

    /// The same kind of error with another message.
    pub fn with_message(self, message: String) -> Self {
        match self {
            ApiError::InvalidInput(_) => ApiError::InvalidInput(message),
            ApiError::BadRequest { code, .. } => ApiError::BadRequest { code, message },
            ApiError::Unauthorized(_) => ApiError::Unauthorized(message),
            ApiError::Forbidden(_) => ApiError::Forbidden(message),
            ApiError::UnsupportedMediaType(_) => ApiError::UnsupportedMediaType(message),
            ApiError::PayloadTooLarge(_) => ApiError::PayloadTooLarge(message),
            ApiError::NotFound { code, .. } => ApiError::NotFound { code, message },
            ApiError::MethodNotAllowed(_) => ApiError::MethodNotAllowed(message),
            ApiError::Unprocessable { code, .. } => ApiError::Unprocessable { code, message },
            ApiError::TooMany { code, .. } => ApiError::TooMany { code, message },
            ApiError::RateLimited {
                retry_after_secs, ..
            } => ApiError::RateLimited {
                message,
                retry_after_secs,
            },
            ApiError::UpstreamUnavailable(_) => ApiError::UpstreamUnavailable(message),
            ApiError::Busy {
                retry_after_secs, ..
            } => ApiError::Busy {
                message,
                retry_after_secs,
            },
            ApiError::Timeout(_) => ApiError::Timeout(message),
            ApiError::Internal(_) => ApiError::Internal(message),
        }
    }

    pub fn insufficient_data(message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            code: "insufficient_data",
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidInput(_) | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } | ApiError::TooMany { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::UpstreamUnavailable(_) | ApiError::Busy { .. } | ApiError::Timeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidInput(_) => "invalid_input",
            ApiError::BadRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::TooMany { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The message a client sees; internal detail stays in the logs.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(format!("{err:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "request rejected");
        }
        let body = json!({
            "success": false,
            "error": self.public_message(),
            "code": self.code(),
        });
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited {
            retry_after_secs, ..
        }
        | ApiError::Busy {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<crate::market::MarketError> for ApiError {
    fn from(err: crate::market::MarketError) -> Self {
        use crate::market::MarketError;
        match err {
            MarketError::InvalidSymbol { .. } => ApiError::invalid(err.to_string()),
            MarketError::NotFound { .. } => ApiError::NotFound {
                code: "unknown_symbol",
                message: err.to_string(),
            },
            MarketError::Unavailable { .. } => ApiError::UpstreamUnavailable(err.to_string()),
        }
    }
}

impl From<crate::models::ModelError> for ApiError {
    fn from(err: crate::models::ModelError) -> Self {
        use crate::models::ModelError;
        match err {
            ModelError::InvalidInput(m) => ApiError::InvalidInput(m),
            ModelError::InsufficientData(m) => ApiError::insufficient_data(m),
            ModelError::Infeasible(message) => ApiError::Unprocessable {
                code: "infeasible",
                message,
            },
            ModelError::Failed(message) => ApiError::Unprocessable {
                code: "model_failed",
                message,
            },
            ModelError::Busy(message) => ApiError::Busy {
                message,
                retry_after_secs: 5,
            },
            ModelError::OutOfTime(message) => ApiError::Timeout(message),
            ModelError::Cancelled(message) => ApiError::Busy {
                message,
                retry_after_secs: 1,
            },
        }
    }
}

impl From<crate::catalog::subscriptions::StoreError> for ApiError {
    fn from(err: crate::catalog::subscriptions::StoreError) -> Self {
        use crate::catalog::subscriptions::StoreError;
        match err {
            StoreError::CallerFull { .. } => ApiError::BadRequest {
                code: "too_many_subscriptions",
                message: err.to_string(),
            },
            StoreError::StoreFull { .. } => ApiError::TooMany {
                code: "subscriptions_full",
                message: err.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = err.into_response();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_use_the_contract_body() {
        let (status, body) = body_of(ApiError::insufficient_data("need 30 prices, got 3")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["success"], false);
        assert_eq!(body["code"], "insufficient_data");
        assert_eq!(body["error"], "need 30 prices, got 3");
    }

    #[tokio::test]
    async fn internal_detail_is_not_sent_to_clients() {
        let (status, body) = body_of(ApiError::Internal("db path /secret".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "internal server error");
    }

    #[tokio::test]
    async fn throttling_errors_carry_retry_after() {
        let resp = ApiError::Busy {
            message: "training queue full".into(),
            retry_after_secs: 5,
        }
        .into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
    }
}
