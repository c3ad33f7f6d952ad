//! The one error type every handler and service returns: a stable code from
//! one list ([`ErrorCode`], which also decides the status) and a message.
//! Its body is the contract's `{"success": false, "error": "...", "code": "..."}`.
//! Internal failures are logged with their cause and answered with a
//! generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Every error code tickcast answers with (README, "Error codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed or invalid input: a body, field or param (400).
    InvalidInput,
    /// A subscription `type` other than `agent` or `model` (400).
    InvalidType,
    /// A request refused by the HTTP layer for its form (400).
    InvalidRequest,
    /// A caller already holds the most subscriptions one may (400).
    TooManySubscriptions,
    /// An admin switch to a provider that cannot be primary (400).
    UnsupportedProvider,
    /// No or wrong API key or admin token (401).
    Unauthorized,
    /// The route is switched off here (403).
    Forbidden,
    /// No such route (404).
    NotFound,
    /// No served model by that name (404).
    UnknownModel,
    /// No provider has the symbol (404).
    UnknownSymbol,
    /// No agent or model with the id to subscribe to (404).
    UnknownId,
    /// The route exists without this method (405).
    MethodNotAllowed,
    /// The request contradicts the current state, e.g. promoting the
    /// champion itself (409).
    Conflict,
    /// The body exceeds the configured limit (413).
    PayloadTooLarge,
    /// The body is not JSON by its content type (415).
    UnsupportedMediaType,
    /// Valid input, too few prices for the model (422).
    InsufficientData,
    /// Valid input with no answer, e.g. no tangency portfolio (422).
    Infeasible,
    /// The data gave a model nothing it could fit (422).
    ModelFailed,
    /// The caller is over its rate (429, with Retry-After).
    RateLimited,
    /// The subscriptions store keeps no more callers (429).
    SubscriptionsFull,
    /// No data provider could answer and nothing is cached (503).
    UpstreamUnavailable,
    /// Too much of this work is running or queued (503, with Retry-After).
    Busy,
    /// The request or its work ran out of time (503).
    Timeout,
    /// The service is still starting or shutting down (503).
    NotReady,
    /// A fault of tickcast itself (500).
    InternalError,
}

impl ErrorCode {
    /// Every code (a new one goes here, and in the README's table).
    pub const ALL: [ErrorCode; 25] = {
        use ErrorCode::*;
        [
            InvalidInput,
            InvalidType,
            InvalidRequest,
            TooManySubscriptions,
            UnsupportedProvider,
            Unauthorized,
            Forbidden,
            NotFound,
            UnknownModel,
            UnknownSymbol,
            UnknownId,
            MethodNotAllowed,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            InsufficientData,
            Infeasible,
            ModelFailed,
            RateLimited,
            SubscriptionsFull,
            UpstreamUnavailable,
            Busy,
            Timeout,
            NotReady,
            InternalError,
        ]
    };

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidInput | InvalidType | InvalidRequest | TooManySubscriptions
            | UnsupportedProvider => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            NotFound | UnknownModel | UnknownSymbol | UnknownId => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InsufficientData | Infeasible | ModelFailed => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited | SubscriptionsFull => StatusCode::TOO_MANY_REQUESTS,
            UpstreamUnavailable | Busy | Timeout | NotReady => StatusCode::SERVICE_UNAVAILABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidInput => "invalid_input",
            InvalidType => "invalid_type",
            InvalidRequest => "invalid_request",
            TooManySubscriptions => "too_many_subscriptions",
            UnsupportedProvider => "unsupported_provider",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            UnknownModel => "unknown_model",
            UnknownSymbol => "unknown_symbol",
            UnknownId => "unknown_id",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            InsufficientData => "insufficient_data",
            Infeasible => "infeasible",
            ModelFailed => "model_failed",
            RateLimited => "rate_limited",
            SubscriptionsFull => "subscriptions_full",
            UpstreamUnavailable => "upstream_unavailable",
            Busy => "busy",
            Timeout => "timeout",
            NotReady => "not_ready",
            InternalError => "internal_error",
        }
    }
}

/// Every error's body: `success` false, a human-readable `error` and a
/// stable `code`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"success": false, "error": "unknown model \"x\"; served models: [lstm_predictor]", "code": "unknown_model"}))]
pub struct ErrorBody {
    pub success: bool,
    pub error: String,
    pub code: ErrorCode,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 `invalid_input`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// 422 `insufficient_data`.
    pub fn insufficient_data(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InsufficientData, message)
    }

    /// 500: the detail is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, detail)
    }

    /// Asks the client to retry after `secs` (429 and 503 answers).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The same error with another message.
    pub fn with_message(self, message: String) -> Self {
        ApiError { message, ..self }
    }

    /// The message a client sees; internal detail stays in the logs.
    pub fn public_message(&self) -> String {
        match self.code {
            ErrorCode::InternalError => "internal server error".to_string(),
            _ => self.message.clone(),
        }
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
            None => ApiError::internal("no symbol failed"),
        }
    }

    /// The contract's body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            success: false,
            error: self.public_message(),
            code: self.code,
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::internal(format!("{err:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code.as_str(), error = %self, "request rejected");
        }
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::market::MarketError> for ApiError {
    fn from(err: crate::market::MarketError) -> Self {
        use crate::market::MarketError;
        let code = match &err {
            MarketError::InvalidSymbol { .. } => ErrorCode::InvalidInput,
            MarketError::NotFound { .. } => ErrorCode::UnknownSymbol,
            MarketError::Unavailable { .. } => ErrorCode::UpstreamUnavailable,
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<crate::models::ModelError> for ApiError {
    fn from(err: crate::models::ModelError) -> Self {
        use crate::models::ModelError;
        match err {
            ModelError::InvalidInput(m) => ApiError::invalid(m),
            ModelError::InsufficientData(m) => ApiError::insufficient_data(m),
            ModelError::Infeasible(m) => ApiError::new(ErrorCode::Infeasible, m),
            ModelError::Unfit(m) => ApiError::new(ErrorCode::ModelFailed, m),
            ModelError::Internal(m) => ApiError::internal(m),
            ModelError::Busy(m) => ApiError::new(ErrorCode::Busy, m).retry_after(5),
            ModelError::OutOfTime(m) => ApiError::new(ErrorCode::Timeout, m),
            ModelError::Cancelled(m) => ApiError::new(ErrorCode::Busy, m).retry_after(1),
        }
    }
}

impl From<crate::catalog::subscriptions::StoreError> for ApiError {
    fn from(err: crate::catalog::subscriptions::StoreError) -> Self {
        use crate::catalog::subscriptions::StoreError;
        let code = match &err {
            StoreError::CallerFull { .. } => ErrorCode::TooManySubscriptions,
            StoreError::StoreFull { .. } => ErrorCode::SubscriptionsFull,
            _ => ErrorCode::InternalError,
        };
        ApiError::new(code, err.to_string())
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
        let (status, body) = body_of(ApiError::internal("db path /secret")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "internal server error");
    }

    #[tokio::test]
    async fn throttling_errors_carry_retry_after() {
        let resp = ApiError::new(ErrorCode::Busy, "training queue full")
            .retry_after(5)
            .into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../README.md");
        let section = &readme[readme
            .find("## Error codes")
            .expect("README has Error codes")..];
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
            assert!(section.contains(&row), "README lacks {row}");
        }
    }

    #[test]
    fn every_code_serialises_as_it_is_spelt() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
