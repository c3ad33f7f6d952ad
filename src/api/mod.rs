//! HTTP only: routes per endpoint group, merged here with the middleware
//! stack. Handlers parse, call the domain and shape the contract's JSON.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod dashboard;
pub mod enhanced_ml;
pub mod extract;
pub mod lifecycle;
pub mod ops;
pub mod options;
pub mod production;
pub mod risk;
pub mod schema;
pub mod state;
pub mod stream;

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::{middleware, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorCode};
use state::AppState;

pub fn router(state: AppState) -> Router {
    let server = &state.settings.server;
    let timeout = Duration::from_secs(server.request_timeout_secs);
    let body_limit = server.body_limit_bytes;
    let cors = cors_layer(&server.cors_allowed_origins);
    let access = access_level(state.settings.log.access);

    let (routes, spec) = documented_routes(server.metrics_address.trim().is_empty());
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        // One `layer` call for the whole stack: each `Router::layer` boxes
        // the routes again, and every box is cloned on every request.
        // Outermost first.
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(
                    SequentialRequestId::default(),
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request<Body>| request_span(access, req))
                        .on_response(DefaultOnResponse::new().level(access)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(cors)
                .layer(CompressionLayer::new())
                .layer(middleware::from_fn_with_state(
                    std::sync::Arc::clone(&state.access),
                    edge,
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tickcast",
        description = "Stock price predictions, portfolio optimisation, backtests and market data behind the legacy JSON API. Errors are `{success: false, error, code}` with real status codes.",
    ),
    modifiers(&Security),
    tags(
        (name = "enhanced_ml_models", description = "Predictors and the portfolio optimiser"),
        (name = "production_api", description = "Market data layer"),
        (name = "catalog", description = "Agents, models, subscriptions, stocks, returns, backtests"),
        (name = "options", description = "Option prices, greeks and implied volatility"),
        (name = "stream", description = "Live quotes, forecasts and health over WebSocket or Server-Sent Events"),
        (name = "risk", description = "Portfolio Value at Risk, expected shortfall and VaR backtests"),
        (name = "admin", description = "Operator switches (admin token)"),
        (name = "ops", description = "Liveness, readiness, metrics"),
        (name = "dashboard", description = "The analytics page, served from the binary"),
    )
)]
struct ApiDoc;

/// API keys (when `auth.api_keys` is configured) and the admin token.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its OpenAPI entry: routes are only added through
/// `utoipa_axum::routes!`, which takes both from the handler's annotation.
pub fn documented_routes(with_metrics: bool) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router(with_metrics))
        .merge(production::router())
        .merge(enhanced_ml::router())
        .merge(catalog::router())
        .merge(options::router())
        .merge(stream::router())
        .merge(risk::router())
        .merge(admin::router())
        .merge(lifecycle::router())
        .merge(dashboard::router())
        .split_for_parts()
}

fn access_level(level: crate::config::AccessLevel) -> tracing::Level {
    use crate::config::AccessLevel;
    match level {
        AccessLevel::Error => tracing::Level::ERROR,
        AccessLevel::Warn => tracing::Level::WARN,
        AccessLevel::Info => tracing::Level::INFO,
        AccessLevel::Debug => tracing::Level::DEBUG,
        AccessLevel::Trace => tracing::Level::TRACE,
    }
}

/// The span every line logged while serving a request carries (method,
/// path, request id), at the access line's level: at the default `debug`
/// neither is made under the default `info` log (without the span, `list`
/// served 16 % more requests per second: the fmt subscriber formats the
/// span's fields for every request).
fn request_span(level: tracing::Level, req: &Request<Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let (method, path) = (req.method(), req.uri().path());
    macro_rules! span_at {
        ($level:expr) => {
            tracing::span!($level, "request", %method, path, request_id)
        };
    }
    match level {
        tracing::Level::ERROR => span_at!(tracing::Level::ERROR),
        tracing::Level::WARN => span_at!(tracing::Level::WARN),
        tracing::Level::INFO => span_at!(tracing::Level::INFO),
        tracing::Level::DEBUG => span_at!(tracing::Level::DEBUG),
        _ => span_at!(tracing::Level::TRACE),
    }
}

/// Request ids unique within the process and across restarts: a random
/// prefix drawn once, then a counter (a UUID per request costs a random
/// draw and formatting for an id only logs read).
#[derive(Clone)]
struct SequentialRequestId {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialRequestId {
    fn default() -> Self {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        SequentialRequestId {
            prefix: uuid[..12].into(),
            next: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n:x}", self.prefix);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AnyOrigin);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AnyOrigin)
    } else {
        let list = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect::<Vec<_>>();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

async fn unknown_route(req: Request<Body>) -> ApiError {
    let message = format!("no route for {} {}", req.method(), req.uri().path());
    ApiError::new(ErrorCode::NotFound, message)
}

async fn method_not_allowed(req: Request<Body>) -> ApiError {
    let message = format!("{} is not allowed on {}", req.method(), req.uri().path());
    ApiError::new(ErrorCode::MethodNotAllowed, message)
}

/// What every request passes through, in one middleware rather than three
/// (each `from_fn` layer boxes a future and clones the service inside it):
/// the access check ([`auth::admit`]), the contract's body on bare error
/// statuses, and the request metrics, in that order from the inside.
async fn edge(
    State(access): State<std::sync::Arc<auth::Access>>,
    mut req: Request<Body>,
    next: Next,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let response = match auth::admit(&access, &mut req) {
        Ok(()) => next.run(req).await,
        Err(refused) => auth::refusal(refused),
    };
    let response = json_error_bodies(response);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (requests, latency) = series(route, method, response.status().as_u16());
    requests.increment(1);
    latency.record(started.elapsed().as_secs_f64());
    response
}

/// Middleware (timeouts, limits) answers with bare status codes; give every
/// error the contract's JSON body so clients can always read `error`.
fn json_error_bodies(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ApiError::new(
            ErrorCode::Timeout,
            "the request took longer than the configured timeout",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => extract::too_large(),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed")
        }
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "not found"),
        s if s.is_client_error() => ApiError::new(
            ErrorCode::InvalidRequest,
            s.canonical_reason().unwrap_or("bad request"),
        ),
        _ => ApiError::internal(format!("status {status} without a body")),
    };
    let mut rebuilt = error.into_response();
    *rebuilt.status_mut() = status;
    rebuilt
}

/// A panic is a bug: log it, answer 500 with the contract's body.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}

/// A method label from a fixed set: clients may send any token as a method,
/// and each distinct label value would be a new time series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A series' counter and histogram.
type Series = (metrics::Counter, metrics::Histogram);

/// Requests and their latency are counted by route template (never the raw
/// path), known method and status, so label sets stay bounded whatever
/// clients send.
///
/// The series met so far by route template, then method and status, so a
/// request costs two map lookups rather than building and hashing labels.
/// Bounded like the label sets: routes are templates, methods a fixed set.
type SeriesByRoute =
    std::collections::HashMap<Box<str>, std::collections::HashMap<(&'static str, u16), Series>>;

static SERIES: std::sync::LazyLock<std::sync::RwLock<SeriesByRoute>> =
    std::sync::LazyLock::new(Default::default);

fn series(route: &str, method: &'static str, status: u16) -> Series {
    let known = SERIES.read().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = known.get(route).and_then(|m| m.get(&(method, status))) {
        return found.clone();
    }
    drop(known);
    let made = (
        metrics::counter!("tickcast_http_requests_total", "method" => method, "route" => route.to_string(), "status" => status.to_string()),
        metrics::histogram!("tickcast_http_request_duration_seconds", "method" => method, "route" => route.to_string()),
    );
    SERIES
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(route.into())
        .or_default()
        .entry((method, status))
        .or_insert(made)
        .clone()
}

#[cfg(test)]
mod tests {
    /// Routes added with a plain `Router::route` would be served without a
    /// spec entry; only the separate metrics listener may.
    #[test]
    fn routes_are_only_added_with_their_openapi_entry() {
        let files = [
            ("admin.rs", include_str!("admin.rs")),
            ("auth.rs", include_str!("auth.rs")),
            ("catalog.rs", include_str!("catalog.rs")),
            ("dashboard.rs", include_str!("dashboard.rs")),
            ("enhanced_ml.rs", include_str!("enhanced_ml.rs")),
            ("extract.rs", include_str!("extract.rs")),
            ("lifecycle.rs", include_str!("lifecycle.rs")),
            ("mod.rs", include_str!("mod.rs")),
            ("ops.rs", include_str!("ops.rs")),
            ("options.rs", include_str!("options.rs")),
            ("production.rs", include_str!("production.rs")),
            ("risk.rs", include_str!("risk.rs")),
            ("state.rs", include_str!("state.rs")),
            ("stream.rs", include_str!("stream.rs")),
        ];
        let plain_route = concat!(".", "route(");
        for (name, text) in files {
            let allowed = usize::from(name == "ops.rs"); // metrics_router
            assert_eq!(
                text.matches(plain_route).count(),
                allowed,
                "{name} adds a route without its OpenAPI entry; use utoipa_axum::routes!"
            );
        }
        let entries = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api")).unwrap();
        assert_eq!(
            entries.count(),
            files.len() + 1,
            "a new api file: add it above"
        ); // + schema.rs
    }
}
