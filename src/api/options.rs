//! `/api/options`: prices and greeks of vanilla options, and implied
//! volatilities, in batches.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{now, Failures};
use super::state::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::forecast::options::{Ask, OptionDesk, OptionRequest, Valued};
use crate::models::options::UNITS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(price))
        .routes(routes!(implied_volatility))
}

/// `{"options": [...]}`: at most 10 000 options, each valued on its own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"options": [
    {"kind": "call", "style": "european", "spot": 100.0, "strike": 105.0, "expiry_years": 0.5, "volatility": 0.25, "rate": 0.05, "dividend_yield": 0.02},
    {"kind": "put", "style": "american", "symbol": "AAPL", "volatility_source": "garch", "strike": 150.0, "expiry_years": 0.25, "rate": 0.04, "method": "binomial", "steps": 500}
]}))]
pub struct OptionsBody {
    #[schema(value_type = Vec<OptionRequest>)]
    pub options: Vec<Value>,
}

/// One result per option, in order: the valuation, or why there is none.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OptionResult {
    Valued(Valued),
    Failed { error: String, code: ErrorCode },
}

#[derive(Serialize, ToSchema)]
pub struct OptionsResponse {
    pub success: bool,
    pub results: Vec<OptionResult>,
    /// Options valued and options refused.
    pub valued: usize,
    pub failed: usize,
    /// The units of every figure, in words.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub units: serde_json::Map<String, Value>,
    pub timestamp: String,
}

/// Prices and greeks: European by Black-Scholes-Merton (`analytic`) or the
/// CRR tree (`binomial`), American by the CRR tree or Barone-Adesi-Whaley
/// (`baw`). Spot from the request (or a forward), or a symbol's last close;
/// volatility from the request, or the symbol's `realised` or `garch`
/// forecast volatility.
#[utoipa::path(post, path = "/api/options/price", tag = "options", request_body = OptionsBody, responses((status = 200, body = OptionsResponse), Failures))]
async fn price(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OptionsBody>,
) -> Result<Json<OptionsResponse>, ApiError> {
    answer(&state, body, Ask::Price).await
}

/// The volatility at which each option's method gives its `price`:
/// Jäckel's "Let's Be Rational" for European options, bisection on the
/// tree or BAW for American ones. Prices outside the no-arbitrage bounds,
/// or too deep in the money to carry volatility, are refused (422).
#[utoipa::path(post, path = "/api/options/implied_volatility", tag = "options", request_body = OptionsBody, responses((status = 200, body = OptionsResponse), Failures))]
async fn implied_volatility(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OptionsBody>,
) -> Result<Json<OptionsResponse>, ApiError> {
    answer(&state, body, Ask::ImpliedVolatility).await
}

async fn answer(
    state: &AppState,
    body: OptionsBody,
    ask: Ask,
) -> Result<Json<OptionsResponse>, ApiError> {
    let single = body.options.len() == 1;
    let outcomes = OptionDesk::new(&state.market)
        .value(body.options, ask)
        .await?;
    let mut results = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Ok(valued) => results.push(OptionResult::Valued(valued)),
            // A request of one option answers as that option does.
            Err(e) if single => return Err(e),
            Err(e) => results.push(OptionResult::Failed {
                error: e.public_message(),
                code: e.code(),
            }),
        }
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r, OptionResult::Failed { .. }))
        .count();
    let units = UNITS
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    Ok(Json(OptionsResponse {
        success: true,
        valued: results.len() - failed,
        failed,
        results,
        units,
        timestamp: now(),
    }))
}
