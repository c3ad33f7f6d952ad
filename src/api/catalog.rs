//! `/api/catalog`: agents, model listings, subscriptions, stocks, returns
//! and backtests.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, CallerId};
use super::schema::{
    params_of, AgentsResponse, BacktestBody, BacktestResponse, EnhancedModelsResponse, Failures,
    ModelsResponse, ReturnsResponse, StocksResponse, SubscriptionChangeBody, SubscriptionsResponse,
    SymbolsRequest,
};
use super::state::AppState;
use crate::catalog::returns::past_month;
use crate::catalog::{ItemKind, Listing};
use crate::error::{ApiError, ErrorCode};
use crate::forecast::backtest::{BacktestRequest, Period};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents))
        .routes(routes!(models))
        .routes(routes!(enhanced_models))
        .routes(routes!(subscriptions))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
        .routes(routes!(stocks))
        .routes(routes!(past_month_return))
        .routes(routes!(backtest))
}

#[utoipa::path(get, path = "/api/catalog/agents", tag = "catalog", responses((status = 200, body = AgentsResponse)))]
async fn agents(State(state): State<AppState>) -> Json<AgentsResponse> {
    Json(AgentsResponse::new(state.catalog.agents.clone()))
}

#[utoipa::path(get, path = "/api/catalog/models", tag = "catalog", responses((status = 200, body = ModelsResponse)))]
async fn models(State(state): State<AppState>) -> Json<ModelsResponse> {
    let served = state.forecasts.models();
    Json(ModelsResponse::new(
        state.catalog.served(served, Listing::Models),
    ))
}

#[utoipa::path(get, path = "/api/catalog/enhanced_models", tag = "catalog", responses((status = 200, body = EnhancedModelsResponse)))]
async fn enhanced_models(State(state): State<AppState>) -> Json<EnhancedModelsResponse> {
    let served = state.forecasts.models();
    let models = state.catalog.served(served, Listing::EnhancedModels);
    Json(EnhancedModelsResponse::new(models))
}

#[utoipa::path(get, path = "/api/catalog/subscriptions", tag = "catalog", params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = SubscriptionsResponse), Failures))]
async fn subscriptions(
    State(state): State<AppState>,
    CallerId(user): CallerId,
) -> Result<Json<SubscriptionsResponse>, ApiError> {
    let subscriptions = state.subscriptions.list(&user).await?;
    Ok(Json(SubscriptionsResponse::new(subscriptions)))
}

#[utoipa::path(post, path = "/api/catalog/subscribe", tag = "catalog", request_body = SubscriptionChangeBody, params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = SubscriptionsResponse), Failures))]
async fn subscribe(
    State(state): State<AppState>,
    CallerId(user): CallerId,
    ApiJson(change): ApiJson<SubscriptionChangeBody>,
) -> Result<Json<SubscriptionsResponse>, ApiError> {
    let (kind, id) = change.parse()?;
    let known = match kind {
        ItemKind::Agent => state.catalog.agent(&id).is_some(),
        ItemKind::Model => state.forecasts.registry().get(&id).is_some(),
    };
    if !known {
        let message = format!("no {} with id {id:?}", kind.as_str());
        return Err(ApiError::new(ErrorCode::UnknownId, message));
    }
    let subscriptions = state.subscriptions.subscribe(&user, kind, &id).await?;
    Ok(Json(SubscriptionsResponse::new(subscriptions)))
}

#[utoipa::path(post, path = "/api/catalog/unsubscribe", tag = "catalog", request_body = SubscriptionChangeBody, params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = SubscriptionsResponse), Failures))]
async fn unsubscribe(
    State(state): State<AppState>,
    CallerId(user): CallerId,
    ApiJson(change): ApiJson<SubscriptionChangeBody>,
) -> Result<Json<SubscriptionsResponse>, ApiError> {
    let (kind, id) = change.parse()?;
    let subscriptions = state.subscriptions.unsubscribe(&user, kind, &id).await?;
    Ok(Json(SubscriptionsResponse::new(subscriptions)))
}

/// The stocks that can be priced now: the symbol mapping while a live
/// provider answers, else the local data's holdings.
#[utoipa::path(get, path = "/api/catalog/stocks", tag = "catalog", responses((status = 200, body = StocksResponse)))]
async fn stocks(State(state): State<AppState>) -> Json<StocksResponse> {
    let stocks = state.market.priceable_stocks();
    Json(StocksResponse {
        success: true,
        total: stocks.len(),
        stocks,
    })
}

#[utoipa::path(post, path = "/api/catalog/past_month_return", tag = "catalog", request_body = SymbolsRequest, responses((status = 200, body = ReturnsResponse), Failures))]
async fn past_month_return(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SymbolsRequest>,
) -> Result<Json<ReturnsResponse>, ApiError> {
    req.check(state.settings.limits.max_series)?;
    let results = past_month(&state.market, &req.symbols).await;
    Ok(Json(ReturnsResponse::new(results)))
}

/// Walk-forward backtest of any served model on daily closes from the data
/// layer: a predictor's own signal traded on one stock, or the optimiser's
/// allocation of several stocks rebalanced (one stock: buy-and-hold).
#[utoipa::path(post, path = "/api/catalog/backtest", tag = "catalog", request_body = BacktestBody, responses((status = 200, body = BacktestResponse), Failures))]
async fn backtest(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BacktestBody>,
) -> Result<Json<BacktestResponse>, ApiError> {
    let model_id = body.model_id()?.to_string();
    let symbols = body.symbols()?;
    let period = Period::parse(body.period.as_deref().unwrap_or("1y"))?;
    let request = BacktestRequest {
        model_id,
        symbols: symbols.clone(),
        period,
        params: params_of(body.params.clone())?,
    };
    let tested = state.backtests.run(request).await?;
    Ok(Json(BacktestResponse::new(
        &body,
        symbols,
        period.name,
        tested,
    )))
}
