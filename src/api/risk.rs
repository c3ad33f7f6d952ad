//! `/api/risk`: portfolio Value at Risk and expected shortfall, their
//! per-asset contributions, and a backtest of the one-day forecasts.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{now, Failures};
use super::state::AppState;
use crate::error::ApiError;
use crate::forecast::risk::{self as risk_desk, risk_error, PortfolioRequest};
use crate::market::Staleness;
use crate::models::risk::{self, Method, RiskParams, RiskReport};

/// Most returns one window may hold.
pub const MAX_LOOKBACK: usize = 5000;
/// Most days one backtest may test.
pub const MAX_BACKTEST: usize = 2500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(value_at_risk))
}

/// The request: a portfolio (symbols and weights, or closes as
/// `price_data`) and what to compute. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT", "JNJ"], "weights": [0.5, 0.3, 0.2], "levels": [0.95, 0.99], "horizon_days": 1, "methods": ["historical", "parametric", "cornish_fisher", "filtered_historical"], "lookback_days": 1000, "backtest_days": 500}))]
pub struct VarBody {
    /// The assets, in the order of `weights` given as an array. Required
    /// without `price_data`; with it, orders and selects its series.
    #[serde(default)]
    pub symbols: Option<Vec<String>>,
    /// Required: an array in symbol order, or `{symbol: weight}` naming
    /// every symbol. Must sum to 1 (within 1e-6); negative weights are
    /// short positions.
    #[serde(default)]
    pub weights: Option<Value>,
    /// `{symbol: [closes, oldest first]}`, as for the optimiser; the series
    /// are aligned on their most recent common window.
    #[serde(default)]
    pub price_data: Option<Value>,
    /// Confidence levels, each strictly between 0 and 1 (default
    /// `[0.95, 0.99]`, at most 8).
    #[serde(default)]
    pub levels: Option<Vec<f64>>,
    /// 1 to 250 (default 1).
    #[serde(default)]
    pub horizon_days: Option<usize>,
    /// Default: all four.
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    /// Returns in the window (default 1000, 100 to 5000; fewer when the
    /// history is shorter, as the answer says).
    #[serde(default)]
    pub lookback_days: Option<usize>,
    /// Days of one-day forecasts backtested (default 500, at most 2500;
    /// 0 for none).
    #[serde(default)]
    pub backtest_days: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct VarResponse {
    pub success: bool,
    #[serde(flatten)]
    pub report: RiskReport,
    /// `request`, or the provider(s) that supplied the prices.
    pub data_source: String,
    /// Date of the newest bar, when prices came from the data layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    #[serde(flatten)]
    pub staleness: Staleness,
    pub timestamp: String,
}

/// Value at Risk and Conditional VaR (expected shortfall) of a
/// constant-weight portfolio at each level, by historical simulation,
/// parametric normal, Cornish-Fisher and filtered historical simulation
/// (GARCH(1,1), else EWMA); per-symbol component and marginal
/// contributions; and a backtest of one-day forecasts (exceedances,
/// Kupiec and Christoffersen p-values). Losses are positive fractions.
#[utoipa::path(post, path = "/api/risk/var", tag = "risk", request_body = VarBody, responses((status = 200, body = VarResponse), Failures))]
async fn value_at_risk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VarBody>,
) -> Result<Json<VarResponse>, ApiError> {
    let params = params_of(&body)?;
    let request = PortfolioRequest {
        symbols: body.symbols.as_deref(),
        weights: body.weights.as_ref(),
        price_data: body.price_data.as_ref(),
    };
    let assessed =
        risk_desk::assess(&state.market, &state.settings.limits, request, params).await?;
    Ok(Json(VarResponse {
        success: true,
        report: assessed.report,
        data_source: assessed.data_source,
        as_of: assessed.as_of,
        staleness: assessed.stale_age.into(),
        timestamp: now(),
    }))
}

fn params_of(body: &VarBody) -> Result<RiskParams, ApiError> {
    let lookback = body.lookback_days.unwrap_or(risk::DEFAULT_LOOKBACK);
    if lookback > MAX_LOOKBACK {
        return Err(ApiError::invalid(format!(
            "lookback_days must be at most {MAX_LOOKBACK}, got {lookback}"
        )));
    }
    let backtest = body.backtest_days.unwrap_or(risk::DEFAULT_BACKTEST);
    if backtest > MAX_BACKTEST {
        return Err(ApiError::invalid(format!(
            "backtest_days must be at most {MAX_BACKTEST}, got {backtest}"
        )));
    }
    RiskParams::new(
        body.levels
            .clone()
            .unwrap_or_else(|| risk::DEFAULT_LEVELS.to_vec()),
        body.horizon_days.unwrap_or(1),
        body.methods.clone().unwrap_or_else(|| Method::ALL.to_vec()),
        lookback,
        backtest,
    )
    .map_err(risk_error)
}
