//! Extractors that turn every way a request can be malformed into the
//! contract's error body, naming the field at fault.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// `Json<T>` whose rejections are [`ApiError`]s. Large bodies are parsed on
/// a blocking thread, so a megabyte of JSON never holds up an async worker.
pub struct ApiJson<T>(pub T);

/// Bodies up to this size are parsed in place.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Send + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(from_rejection(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::invalid(format!("cannot read request body: {}", e.body_text()))
                }
            })?;
        let large = bytes.len() > INLINE_PARSE_BYTES;
        // serde_json alone first: axum's reading tracks the path of every
        // value for its error message, which costs a fifth of the time of
        // a body of numbers. Only a body that fails is read again axum's
        // way, for that message (both refuse exactly the same bodies).
        let parse = move || match serde_json::from_slice::<T>(&bytes) {
            Ok(value) => Ok(axum::Json(value)),
            Err(_) => axum::Json::<T>::from_bytes(&bytes),
        };
        let parsed = if large {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| ApiError::internal(format!("parsing a body panicked: {e}")))?
        } else {
            parse()
        };
        parsed
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(from_rejection)
    }
}

/// `application/json`, or any `application/...+json`, parameters aside.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

fn from_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        // axum already names the path of the bad field ("price_data[2]: ...").
        JsonRejection::JsonDataError(e) => ApiError::invalid(format!(
            "invalid request body: {}",
            strip_axum_prefix(&e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid(format!(
            "request body is not valid JSON: {}",
            strip_axum_prefix(&e.body_text())
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json (with curl, add -H 'Content-Type: application/json')",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            too_large()
        }
        other => ApiError::invalid(format!("cannot read request body: {}", other.body_text())),
    }
}

/// 413, for a body over `server.body_limit_bytes`.
pub fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "request body exceeds the configured limit",
    )
}

fn strip_axum_prefix(text: &str) -> &str {
    text.split_once("target type: ")
        .or_else(|| text.split_once("as JSON: "))
        .map_or(text, |(_, rest)| rest)
}

/// Who is calling, for per-caller state. With API keys: the key's owner
/// (a trusted gateway's `X-User-Id` names its user instead). Without: the
/// `X-User-Id` header, else `default`.
pub struct CallerId(pub String);

const MAX_CALLER_ID_LEN: usize = 128;

impl<S: Send + Sync> FromRequestParts<S> for CallerId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let keyed = parts.extensions.get::<super::auth::Caller>();
        if let Some(caller) = keyed.filter(|c| !c.trusted_gateway) {
            return Ok(CallerId(caller.owner.clone()));
        }
        let Some(raw) = parts.headers.get("x-user-id") else {
            let fallback = keyed.map_or("default", |c| c.owner.as_str());
            return Ok(CallerId(fallback.to_string()));
        };
        let id = raw
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_CALLER_ID_LEN
                    && id.chars().all(|c| c.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid("X-User-Id must be 1 to 128 visible ASCII characters")
            })?;
        Ok(CallerId(id.to_string()))
    }
}
