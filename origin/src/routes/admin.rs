//! The admin API: the runtime settings ([`crate::runtime`]) over HTTP, behind the same bearer
//! `ADMIN_TOKEN` as the region drain routes ([`authorize`]).
//!
//! - `GET /admin/settings`: the version this origin applies, the newest stored one, the
//!   overrides and every runtime variable's effective value;
//! - `PATCH /admin/settings`: a JSON merge patch of variable -> value (`null` removes an
//!   override); checked by the start-up parsers (422 naming the variable, nothing stored),
//!   stored as the next version, applied here at once and by every origin within a poll;
//! - `POST /admin/settings/rollback`: the content of the version before the current one,
//!   stored as the next version.
//!
//! Without a token: 401 with `WWW-Authenticate: Bearer`; a wrong one, or none configured: 403.
//! Every refusal and change is counted in `seedsync_settings_changes_total{outcome}`; changes
//! are logged with their version and author (the origin's region and the caller's address),
//! never the token.

use std::net::{IpAddr, SocketAddr};

use api::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::ApiJson;
use crate::error::AppError;
use crate::registry::{AdminRefusal, admin_allows};
use crate::runtime::{Applied, ChangeError, Content};
use crate::state::AppState;
use kernel::Secret;

/// Why an admin call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(AdminRefusal);

impl Refused {
    /// The metric label: `unauthorized` (no token) or `forbidden` (a wrong one, or none
    /// configured).
    pub fn outcome(self) -> &'static str {
        match self.0 {
            AdminRefusal::Missing => "unauthorized",
            AdminRefusal::Denied => "forbidden",
        }
    }
}

impl IntoResponse for Refused {
    /// 401 with `WWW-Authenticate: Bearer`, or 403.
    fn into_response(self) -> Response {
        match self.0 {
            AdminRefusal::Missing => {
                let mut response = AppError::from(ApiError::new(
                    ErrorCode::Unauthorized,
                    "this route needs an admin bearer token",
                ))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            AdminRefusal::Denied => {
                AppError::Forbidden("the token does not allow administration".into())
                    .into_response()
            }
        }
    }
}

/// Checks the bearer `ADMIN_TOKEN` of an admin call (constant-time; see [`admin_allows`]).
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Refused> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let configured = state
        .registry
        .settings
        .admin_token
        .as_ref()
        .map(Secret::expose);
    admin_allows(configured, authorization).map_err(Refused)
}

/// The caller's socket address, when the server recorded one (not in `oneshot` tests).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The answer of every settings route.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// The version this origin applies (0: none stored, the environment's values).
    pub version: i64,
    /// The newest stored version (ahead of `version` until this origin's next poll).
    pub stored_version: i64,
    /// Who stored `version`.
    pub changed_by: String,
    /// When (Unix ms; 0 for version 0).
    pub changed_at: i64,
    /// The stored overrides of `version`.
    pub overrides: Content,
    /// Every runtime variable's value in force here.
    pub effective: std::collections::BTreeMap<&'static str, String>,
}

impl SettingsView {
    fn new(applied: &Applied, stored_version: i64) -> SettingsView {
        SettingsView {
            version: applied.version,
            stored_version,
            changed_by: applied.changed_by.clone(),
            changed_at: applied.changed_at_ms,
            overrides: applied.content.clone(),
            effective: applied.values.as_variables(),
        }
    }
}

fn count(state: &AppState, outcome: &str) {
    state
        .metrics
        .settings_changes
        .with_label_values(&[outcome])
        .inc();
}

/// `GET /admin/settings`.
pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return refused.into_response();
    }
    match state.runtime.stored_version().await {
        Ok(stored) => Json(SettingsView::new(&state.runtime.current(), stored)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `PATCH /admin/settings`.
pub async fn patch(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<ApiJson<Value>, AppError>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        count(&state, refused.outcome());
        tracing::warn!(peer = ?peer, outcome = refused.outcome(), "runtime settings change refused");
        return refused.into_response();
    }
    let ApiJson(patch) = match body {
        Ok(body) => body,
        Err(error) => {
            count(&state, "invalid");
            return error.into_response();
        }
    };
    let by = author(&state, peer);
    let result = state.runtime.change(&patch, &by).await;
    answer(&state, result, "changed", &by)
}

/// `POST /admin/settings/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        count(&state, refused.outcome());
        tracing::warn!(peer = ?peer, outcome = refused.outcome(), "runtime settings rollback refused");
        return refused.into_response();
    }
    let by = author(&state, peer);
    let result = state.runtime.rollback(&by).await;
    answer(&state, result, "rolled_back", &by)
}

fn author(state: &AppState, peer: Option<IpAddr>) -> String {
    match peer {
        Some(peer) => format!("admin via {} from {peer}", state.service.region()),
        None => format!("admin via {}", state.service.region()),
    }
}

fn answer(
    state: &AppState,
    result: Result<std::sync::Arc<Applied>, ChangeError>,
    outcome: &'static str,
    by: &str,
) -> Response {
    match result {
        Ok(applied) => {
            count(state, outcome);
            tracing::info!(
                version = applied.version,
                by,
                outcome,
                "runtime settings stored"
            );
            Json(SettingsView::new(&applied, applied.version)).into_response()
        }
        Err(error) => {
            count(state, error.outcome());
            tracing::warn!(%error, by, outcome = error.outcome(), "runtime settings not changed");
            AppError::from(error).into_response()
        }
    }
}
