//! `GET /leaderboard?period=day|all&algorithm=...&day=YYYY-MM-DD&limit=N` (see
//! [`api::leaderboard`]): the stored leaderboard, ranked, cacheable for a few seconds.

use api::leaderboard::{LeaderboardQuery, LeaderboardView, MAX_AGE_SECONDS, rank};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;

use crate::error::AppError;
use crate::state::AppState;

/// `GET /leaderboard`.
pub async fn leaderboard(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<([(header::HeaderName, String); 1], Json<LeaderboardView>), AppError> {
    let query = LeaderboardQuery::parse(
        query.as_deref().unwrap_or_default(),
        kernel::clock::now_ms(),
    )?;
    let standings = state
        .leaderboard
        .standings(&query.period_key(), query.algorithm.as_str())
        .await?;
    let view = LeaderboardView {
        period: query.period,
        day: query.day.clone(),
        algorithm: query.algorithm,
        entries: rank(standings, query.limit),
    };
    Ok((
        [(
            header::CACHE_CONTROL,
            format!("public, max-age={MAX_AGE_SECONDS}"),
        )],
        Json(view),
    ))
}
