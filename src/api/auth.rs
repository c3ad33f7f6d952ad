//! Access control for `/api/*`: API keys (compared by SHA-256 in constant
//! time) and per-caller rate limits. Off while no key is configured, so the
//! legacy clients, which send no credentials, keep working.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response};
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AuthSettings, CallerQuota};
use crate::error::{ApiError, ErrorCode};
use crate::throttle::{KeyedGcra, Window};

/// Who made a request that presented an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: String,
    pub trusted_gateway: bool,
}

struct Key {
    sha256: [u8; 32],
    caller: Caller,
    limiter: Option<DefaultDirectRateLimiter>,
}

/// The configured keys and limits.
pub struct Access {
    keys: Vec<Key>,
    /// Callers without a key, by client IP.
    by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    requests: AtomicU64,
    /// Failed admin-token attempts, by client IP: past the limit a client is
    /// refused before its token is even compared, so guessing is slow.
    admin_failures: KeyedGcra<IpAddr>,
}

/// Client addresses whose admin-token failures are remembered.
const ADMIN_FAILURE_KEYS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
#[error("auth.api_keys[{index}] ({owner}): {reason}")]
pub struct AccessError {
    index: usize,
    owner: String,
    reason: String,
}

fn quota(q: CallerQuota) -> Option<Quota> {
    let rate = NonZeroU32::new(q.per_second)?;
    let burst = NonZeroU32::new(q.burst).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl Access {
    /// Resolves the keys (reading `env` references now) and builds the
    /// limiters. `env` looks up environment variables.
    pub fn new(
        settings: &AuthSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AccessError> {
        let mut keys = Vec::with_capacity(settings.api_keys.len());
        for (index, k) in settings.api_keys.iter().enumerate() {
            let sha256 = k.digest(&env).map_err(|reason| AccessError {
                index,
                owner: k.owner.clone(),
                reason,
            })?;
            keys.push(Key {
                sha256,
                caller: Caller {
                    owner: k.owner.trim().to_string(),
                    trusted_gateway: k.trusted_gateway,
                },
                limiter: quota(k.quota.unwrap_or(settings.quota)).map(RateLimiter::direct),
            });
        }
        let by_ip = if keys.is_empty() {
            quota(settings.quota).map(RateLimiter::keyed)
        } else {
            None
        };
        let per_minute = settings.admin_failures_per_minute;
        let admin_failures = KeyedGcra::new(
            Window::new(per_minute, std::time::Duration::from_secs(60), per_minute),
            ADMIN_FAILURE_KEYS,
        );
        Ok(Access {
            keys,
            by_ip,
            requests: AtomicU64::new(0),
            admin_failures,
        })
    }

    /// `Err` with the wait when `client` failed the admin token too often.
    pub fn admin_attempt_allowed(&self, client: IpAddr) -> Result<(), ApiError> {
        self.admin_failures.check(&client).map_err(|wait| {
            tracing::warn!(%client, "admin authentication refused: too many failures");
            limited(wait)
        })
    }

    /// Counts a failed admin-token attempt of `client`.
    pub fn admin_attempt_failed(&self, client: IpAddr) {
        tracing::warn!(%client, "admin authentication failed");
        let _ = self.admin_failures.take(&client);
    }

    pub fn requires_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key's caller; every configured key is compared, in constant time.
    fn caller_for(&self, presented: &str) -> Option<&Key> {
        let hash = digest(presented.as_bytes());
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.sha256.ct_eq(&hash)) {
                found = Some(key);
            }
        }
        found
    }
}

/// The key from `Authorization: Bearer` or `X-API-Key`.
fn presented_key(req: &Request<Body>) -> Option<&str> {
    let headers = req.headers();
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The WebSocket route, which may take its key in a message instead.
pub const STREAM_PATH: &str = "/api/stream";

/// Routes open whatever is configured: ops polls health, and admin routes
/// have their own token.
fn is_open(path: &str) -> bool {
    !path.starts_with("/api/")
        || path.starts_with("/api/admin/")
        || path == "/api/production_api/health"
}

fn limited(wait: std::time::Duration) -> ApiError {
    let message = format!(
        "rate limit reached; retry in {:.1} s",
        wait.as_secs_f64().max(0.1)
    );
    ApiError::new(ErrorCode::RateLimited, message)
        .retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
}

fn key_required() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>",
    )
}

impl Access {
    /// The caller behind the request's key, within its rate.
    fn admit_key(&self, req: &Request<Body>) -> Result<Caller, ApiError> {
        self.admit_presented(presented_key(req).unwrap_or(""))
    }

    /// The caller behind `presented` (a key sent in a stream's first
    /// message), within its rate.
    pub fn admit_presented(&self, presented: &str) -> Result<Caller, ApiError> {
        let key = Some(presented.trim())
            .filter(|k| !k.is_empty())
            .and_then(|k| self.caller_for(k))
            .ok_or_else(key_required)?;
        if let Some(Err(not_until)) = key.limiter.as_ref().map(|l| l.check()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(limited(wait));
        }
        Ok(key.caller.clone())
    }

    /// Without keys: the client address within its rate (if one is set).
    fn admit_address(&self, req: &Request<Body>) -> Result<(), ApiError> {
        let (Some(by_ip), Some(ip)) = (
            &self.by_ip,
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ) else {
            return Ok(());
        };
        if let Err(not_until) = by_ip.check_key(&ip) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(limited(wait));
        }
        // Forget idle addresses now and then, so the map stays bounded.
        if self
            .requests
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(10_000)
        {
            by_ip.retain_recent();
        }
        Ok(())
    }
}

/// Checks the key and the caller's rate; puts the [`Caller`] in the
/// request's extensions.
pub fn admit(access: &Access, req: &mut Request<Body>) -> Result<(), ApiError> {
    if is_open(req.uri().path()) {
        return Ok(());
    }
    // Browsers cannot set headers on a WebSocket: without one, the stream
    // asks for the key in its first message (a wrong key is still refused
    // here, before the upgrade).
    if req.uri().path() == STREAM_PATH && access.requires_keys() && presented_key(req).is_none() {
        return Ok(());
    }
    if access.requires_keys() {
        let caller = access.admit_key(req)?;
        req.extensions_mut().insert(caller);
        Ok(())
    } else {
        access.admit_address(req)
    }
}

/// The answer to a refused request: a missing or unknown key carries the
/// `WWW-Authenticate` challenge.
pub fn refusal(refused: ApiError) -> Response<Body> {
    let challenge = refused.code() == ErrorCode::Unauthorized;
    let mut response = refused.into_response();
    if challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeySettings;

    fn settings(keys: Vec<ApiKeySettings>) -> AuthSettings {
        AuthSettings {
            api_keys: keys,
            quota: CallerQuota {
                per_second: 0,
                burst: 0,
            },
            admin_failures_per_minute: 5,
        }
    }

    fn key(owner: &str, sha256: &str, env: &str) -> ApiKeySettings {
        ApiKeySettings {
            owner: owner.into(),
            sha256: sha256.into(),
            env: env.into(),
            trusted_gateway: false,
            quota: None,
        }
    }

    #[test]
    fn keys_match_by_hash_or_environment_variable() {
        // sha256("test")
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let access = Access::new(
            &settings(vec![key("alice", hash, ""), key("bob", "", "BOB_KEY")]),
            |name| (name == "BOB_KEY").then(|| "bobs-secret".to_string()),
        )
        .unwrap();
        assert_eq!(access.caller_for("test").unwrap().caller.owner, "alice");
        assert_eq!(
            access.caller_for("bobs-secret").unwrap().caller.owner,
            "bob"
        );
        assert!(access.caller_for("tes").is_none());
        assert!(access.caller_for(hash).is_none(), "the hash is not the key");
    }

    #[test]
    fn bad_key_entries_stop_startup_with_the_reason() {
        for (bad, reason) in [
            (key("a", "abc", ""), "64 hexadecimal"),
            (key("a", "", "UNSET_VARIABLE"), "not set"),
            (key("a", "", ""), "exactly one"),
            (key(" ", "", "X"), "owner is empty"),
        ] {
            let err = Access::new(&settings(vec![bad]), |_| None).err().unwrap();
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn open_routes_are_ops_admin_and_provider_health() {
        for open in [
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/api/production_api/health",
            "/api/admin/market_data_provider",
        ] {
            assert!(is_open(open), "{open}");
        }
        assert!(!is_open("/api/catalog/models"));
        assert!(!is_open("/api/production_api/portfolio_data"));
    }
}
