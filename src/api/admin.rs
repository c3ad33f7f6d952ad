//! `/api/admin`: operator switches, behind the admin bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{Failures, ProviderResponse, ProviderSwitchBody};
use super::state::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::market::{fyers, yahoo};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(current_provider, switch_provider))
}

/// Proof that the caller sent the configured admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.settings.admin_token.expose_secret();
        if expected.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "admin routes are disabled: no admin token is configured (TICKCAST_ADMIN_TOKEN)",
            ));
        }
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        state.access.admin_attempt_allowed(client)?;
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time, so response timing says nothing about the token.
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Admin)
        } else {
            state.access.admin_attempt_failed(client);
            Err(ApiError::new(
                ErrorCode::Unauthorized,
                "send the admin token as Authorization: Bearer <token>",
            ))
        }
    }
}

/// The contract's `{success, provider}`, plus the whole order tried.
fn answer(state: &AppState) -> Json<ProviderResponse> {
    Json(ProviderResponse {
        success: true,
        provider: state.market.primary(),
        provider_priority: state.market.priority(),
    })
}

#[utoipa::path(get, path = "/api/admin/market_data_provider", tag = "admin", security(("admin_token" = [])), responses((status = 200, body = ProviderResponse), Failures))]
async fn current_provider(_: Admin, State(state): State<AppState>) -> Json<ProviderResponse> {
    answer(&state)
}

/// Checks that `provider` can be primary, handing Fyers the credentials
/// given (without any, those configured must exist).
fn credentials_for(
    state: &AppState,
    provider: &str,
    app_id: Option<String>,
    access_token: Option<SecretString>,
) -> Result<(), ApiError> {
    match provider {
        yahoo::NAME => Ok(()),
        fyers::NAME => match (app_id, access_token) {
            (Some(app_id), Some(token))
                if !app_id.trim().is_empty() && !token.expose_secret().trim().is_empty() =>
            {
                let set = state.market.set_credentials(provider, &app_id, token);
                set.map_err(ApiError::invalid)
            }
            (None, None) if state.settings.fyers.is_configured() => Ok(()),
            _ => Err(ApiError::invalid(
                "fyers needs app_id and access_token (none are configured)",
            )),
        },
        other => Err(ApiError::new(
            ErrorCode::UnsupportedProvider,
            format!("unsupported provider {other:?}: expected yfinance or fyers"),
        )),
    }
}

/// Makes `provider` the one tried first; Fyers with the credentials given
/// (or those configured).
#[utoipa::path(post, path = "/api/admin/market_data_provider", tag = "admin", security(("admin_token" = [])), request_body = ProviderSwitchBody, responses((status = 200, body = ProviderResponse), Failures))]
async fn switch_provider(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(switch): ApiJson<ProviderSwitchBody>,
) -> Result<Json<ProviderResponse>, ApiError> {
    let provider = switch.provider.trim();
    credentials_for(&state, provider, switch.app_id, switch.access_token)?;
    state
        .market
        .set_primary(provider)
        .map_err(ApiError::invalid)?;
    tracing::info!(provider, "primary market data provider switched");
    Ok(answer(&state))
}
