//! What every HTTP provider shares: one client setup, and the mapping of
//! transport errors and status codes to [`ProviderError`].

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::provider::ProviderError;

/// Browser-like, as Yahoo's public endpoints expect.
const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) tickcast";

pub fn client(timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| ProviderError::Unavailable(format!("HTTP client setup: {e}")))
}

/// A reqwest error as a provider error. The URL is left out: it may carry
/// credentials or tokens in its query.
pub fn from_transport(err: reqwest::Error) -> ProviderError {
    if err.is_timeout() {
        ProviderError::Timeout
    } else if err.is_decode() {
        ProviderError::Malformed(err.without_url().to_string())
    } else {
        // reqwest's own message is generic; the root cause says what failed
        // (DNS, refused, TLS).
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        ProviderError::Transport(message)
    }
}

/// `Retry-After` in seconds (HTTP-date forms are ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The error for a non-success status whose body says nothing more specific.
pub fn from_status(status: StatusCode, headers: &HeaderMap, body: &str) -> ProviderError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(headers),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ProviderError::Unauthorized(format!("HTTP {}", status.as_u16()))
        }
        _ => ProviderError::Upstream {
            status: status.as_u16(),
            message: snippet(body),
        },
    }
}

/// The start of a body, on one line, for error messages.
pub fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_map_to_typed_errors() {
        let mut h = HeaderMap::new();
        assert_eq!(
            from_status(StatusCode::TOO_MANY_REQUESTS, &h, "Too Many Requests"),
            ProviderError::RateLimited { retry_after: None }
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            from_status(StatusCode::TOO_MANY_REQUESTS, &h, ""),
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            from_status(StatusCode::BAD_GATEWAY, &h, "<html>oops</html>"),
            ProviderError::Upstream { status: 502, .. }
        ));
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        assert_eq!(snippet("a\n  b"), "a b");
        assert_eq!(snippet(&"x".repeat(500)).len(), 123);
    }
}
