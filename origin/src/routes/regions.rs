//! The live region registry over HTTP: `GET /regions` (live regions), the architecture
//! document's `POST /api/regions/register` and `GET /api/regions`, and the admin-only
//! `POST /regions/{name}/drain` and `/undrain` (bearer `ADMIN_TOKEN`).

use api::regions::{
    DrainView, LegacyRegion, LegacyRegionList, RegionList, RegionLoad, RegionStatus,
    RegisterRequest, is_base_url,
};
use api::{ApiError, ErrorCode, RegionName};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ApiJson;
use crate::error::AppError;
use crate::registry::{Heartbeat, registrant_allows};
use crate::state::AppState;
use kernel::clock::now_ms;

/// `GET /regions`: the live regions (expired records are gone), with their status and load.
pub async fn list(State(state): State<AppState>) -> Result<Json<RegionList>, AppError> {
    let regions = state.registry.live().await?;
    Ok(Json(RegionList {
        served_by: state.service.region().clone(),
        now: now_ms(),
        regions,
    }))
}

/// `GET /api/regions`: the same list in the architecture document's shape.
pub async fn legacy_list(
    State(state): State<AppState>,
) -> Result<Json<LegacyRegionList>, AppError> {
    let regions = state.registry.live().await?;
    Ok(Json(LegacyRegionList {
        regions: regions.iter().map(LegacyRegion::from).collect(),
    }))
}

/// `POST /api/regions/register` `{region, base_url}`: records a region as a heartbeat of this
/// origin's TTL (a registrant that stops re-registering drops out like a silent origin).
/// With `REGISTRY_SECRET`, only a registrant that sends it as `Authorization: Bearer` (another
/// origin, an operator's tool) may: anyone else gets 401 and nothing is written; the record is
/// then signed by this origin.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<Response, AppError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if registrant_allows(state.registry.settings.keys.as_ref(), authorization).is_err() {
        tracing::warn!(
            region = request.region.as_str(),
            "region registration refused: no valid registry credential"
        );
        let mut response = AppError::from(ApiError::new(
            ErrorCode::Unauthorized,
            "registering a region needs the registry credential",
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(response);
    }
    let url = request.base_url.trim().trim_end_matches('/').to_owned();
    if !is_base_url(&url) {
        return Err(ApiError::invalid("base_url", "must be an http(s) base URL").into());
    }
    let beat = Heartbeat {
        name: request.region,
        url,
        version: "registered".to_owned(),
        load: RegionLoad::default(),
        at_ms: now_ms(),
    };
    state.registry.write(&beat).await?;
    Ok(legacy_list(State(state)).await?.into_response())
}

/// `POST /regions/{name}/drain`.
pub async fn drain(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    set_status(state, &headers, &name, RegionStatus::Draining).await
}

/// `POST /regions/{name}/undrain`.
pub async fn undrain(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    set_status(state, &headers, &name, RegionStatus::Active).await
}

async fn set_status(
    state: AppState,
    headers: &HeaderMap,
    raw: &str,
    status: RegionStatus,
) -> Response {
    if let Err(refused) = super::admin::authorize(&state, headers) {
        return refused.into_response();
    }
    let name = match RegionName::parse(raw) {
        Ok(name) => name,
        Err(e) => return AppError::from(ApiError::invalid("name", e)).into_response(),
    };
    let result: Result<DrainView, AppError> = async {
        let live = state.registry.live().await?;
        if !live.iter().any(|r| r.name == name) {
            return Err(AppError::NotFound(format!(
                "no live region named {}",
                name.as_str()
            )));
        }
        state.registry.store.set_status(&name, status).await?;
        tracing::info!(
            region = name.as_str(),
            status = status.as_str(),
            "region status set"
        );
        Ok(DrainView {
            region: name,
            status,
        })
    }
    .await;
    match result {
        Ok(view) => Json(view).into_response(),
        Err(e) => e.into_response(),
    }
}
