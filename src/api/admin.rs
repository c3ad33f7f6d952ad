//! `/api/admin`: operator switches, behind the admin bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema;
use crate::error::ApiError;
use crate::market::{fyers, yahoo};
use crate::startup::AppState;

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
            return Err(ApiError::Forbidden(
                "admin routes are disabled: no admin token is configured (TICKCAST_ADMIN_TOKEN)"
                    .into(),
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
            Err(ApiError::Unauthorized(
                "send the admin token as Authorization: Bearer <token>".into(),
            ))
        }
    }
}

/// The contract's `{success, provider}`, plus the whole order tried.
fn answer(state: &AppState) -> Json<Value> {
    Json(json!({
        "success": true,
        "provider": state.market.primary(),
        "provider_priority": state.market.priority(),
    }))
}

#[utoipa::path(get, path = "/api/admin/market_data_provider", tag = "admin", security(("admin_token" = [])), responses((status = 200, body = schema::ProviderResponse), (status = 401, description = "no or wrong admin token", body = schema::ErrorBody), (status = 403, description = "no admin token configured", body = schema::ErrorBody)))]
async fn current_provider(_: Admin, State(state): State<AppState>) -> Json<Value> {
    answer(&state)
}

#[derive(Deserialize)]
struct Switch {
    provider: String,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    access_token: Option<SecretString>,
}

#[utoipa::path(post, path = "/api/admin/market_data_provider", tag = "admin", security(("admin_token" = [])), request_body = schema::ProviderSwitchBody, responses((status = 200, body = schema::ProviderResponse), (status = "4XX", description = "bad input, wrong content type", body = schema::ErrorBody), (status = 401, description = "no or wrong admin token", body = schema::ErrorBody), (status = 403, description = "no admin token configured", body = schema::ErrorBody)))]
async fn switch_provider(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(switch): ApiJson<Switch>,
) -> Result<Json<Value>, ApiError> {
    match switch.provider.trim() {
        yahoo::NAME => {}
        fyers::NAME => match (switch.app_id, switch.access_token) {
            (Some(app_id), Some(token))
                if !app_id.trim().is_empty() && !token.expose_secret().trim().is_empty() =>
            {
                state.fyers.set_credentials(&app_id, token);
            }
            (None, None) if state.settings.fyers.is_configured() => {}
            _ => {
                return Err(ApiError::invalid(
                    "fyers needs app_id and access_token (none are configured)",
                ))
            }
        },
        other => {
            return Err(ApiError::BadRequest {
                code: "unsupported_provider",
                message: format!("unsupported provider {other:?}: expected yfinance or fyers"),
            })
        }
    }
    state
        .market
        .set_primary(switch.provider.trim())
        .map_err(ApiError::invalid)?;
    tracing::info!(
        provider = switch.provider.trim(),
        "primary market data provider switched"
    );
    Ok(answer(&state))
}
