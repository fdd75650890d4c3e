//! The isolate's live region table (see [`crate::live`]), its refresh, and the routing of
//! starts over it with the round trips and breakers [`super::upstream`] observed.
//!
//! The hot path only reads isolate memory: [`effective`] hands out the routing configuration
//! built at the last refresh (an `Rc` clone). A refresh (registry `GET /regions` from the first
//! origin that answers, then one `/health` probe per region for the round trip) runs after
//! the answer through `ctx.wait_until`, at most one per isolate at a time, and only when the
//! table is older than `REGISTRY_REFRESH_MS`.

use std::cell::RefCell;
use std::rc::Rc;

use api::RegionName;
use api::regions::RegionList;
use worker::Context;

use super::context::{Trace, now_ms};
use super::upstream::{self, OriginCall};
use crate::config::Config;
use crate::live::RegionTable;
use crate::routing::{self, RouteHints, Signals};
use crate::views::RegionsView;

/// A refresh that never reported back (its isolate task was cancelled) is given up after this.
const STUCK_REFRESH_MS: u64 = 30_000;
/// Budget of a registry read or a probe.
const REFRESH_TIMEOUT_MS: u64 = 1_500;

#[derive(Default)]
struct LiveState {
    /// The configuration the table was built for.
    base: Option<Rc<Config>>,
    /// The table.
    table: Option<RegionTable>,
    /// `base` routing over `table`.
    effective: Option<Rc<Config>>,
    /// When the refresh in flight started, if one is.
    refreshing_since: Option<u64>,
}

thread_local! {
    // Isolate memory; never borrowed across an `.await` (see `super::context`).
    static LIVE: RefCell<LiveState> = RefCell::new(LiveState::default());
}

impl LiveState {
    /// Resets to the static list when the deployment's configuration changed.
    fn sync(&mut self, base: &Rc<Config>) {
        if self.base.as_ref().is_some_and(|b| Rc::ptr_eq(b, base)) {
            return;
        }
        let table = RegionTable::fallback(base, 0);
        self.effective = Some(Rc::new(table.effective(base)));
        upstream::retain_measured(&table);
        self.table = Some(table);
        self.base = Some(base.clone());
    }

    fn install(&mut self, table: RegionTable) {
        if let Some(base) = &self.base {
            self.effective = Some(Rc::new(table.effective(base)));
        }
        upstream::retain_measured(&table);
        self.table = Some(table);
    }
}

/// The configuration to route with: `base` over the live region table.
pub(super) fn effective(base: &Rc<Config>) -> Rc<Config> {
    LIVE.with(|l| {
        let mut l = l.borrow_mut();
        l.sync(base);
        l.effective.clone().unwrap_or_else(|| base.clone())
    })
}

/// The region of a start under the policy order, remembering a latency choice.
pub(super) fn select_start(cfg: &Config, hints: &RouteHints<'_>) -> (RegionName, api::RoutedBy) {
    let now = now_ms();
    let (region, why) = with_table(cfg, now, |table| {
        upstream::with_observed(|b, measurements| {
            let healthy = |r: &str| b.get(r).state_name(now) == "closed";
            let signals = Signals {
                measurements,
                table,
                healthy: &healthy,
            };
            let (r, why) = routing::select_start(cfg, hints, &signals);
            (r.clone(), why)
        })
    });
    if why == api::RoutedBy::Latency {
        upstream::remember_latency_choice(&region);
    }
    (region, why)
}

/// `GET /edge/regions`.
pub(super) fn regions_view<R>(cfg: &Config, f: impl FnOnce(&RegionsView<'_>) -> R) -> R {
    let now = now_ms();
    with_table(cfg, now, |table| {
        upstream::with_observed(|b, m| f(&RegionsView::new(cfg, table, m, b, now)))
    })
}

/// Runs `f` on the live region table, or on the configured fallback before the first refresh.
fn with_table<R>(cfg: &Config, now: u64, f: impl FnOnce(&RegionTable) -> R) -> R {
    LIVE.with(|l| {
        let l = l.borrow();
        match &l.table {
            Some(table) => f(table),
            None => f(&RegionTable::fallback(cfg, now)),
        }
    })
}

/// Starts a refresh after the answer when one is due and none is in flight.
pub(super) fn maybe_refresh(base: &Rc<Config>, ctx: &Context) {
    let now = now_ms();
    let refresh_ms = base.live.refresh_ms;
    if refresh_ms == 0 {
        return;
    }
    let due = LIVE.with(|l| {
        let mut l = l.borrow_mut();
        l.sync(base);
        let stale = l.table.as_ref().is_none_or(|t| t.is_stale(now, refresh_ms));
        let busy = l
            .refreshing_since
            .is_some_and(|since| now.saturating_sub(since) < STUCK_REFRESH_MS);
        if stale && !busy {
            l.refreshing_since = Some(now);
            true
        } else {
            false
        }
    });
    if due {
        ctx.wait_until(refresh(base.clone()));
    }
}

/// Reads the registry from the first origin of the static list that answers (never from a
/// URL the registry itself named: a forged row must not choose where the next table comes
/// from), installs the new table (or the static list when none answered), then probes every
/// region of the table at once for its round trip (the table is capped at `REGION_MAX`).
async fn refresh(base: Rc<Config>) {
    let origins: Vec<String> = base.regions.iter().map(|r| r.origin.clone()).collect();
    let timeout = base.origin_timeout_ms.min(REFRESH_TIMEOUT_MS);
    // The edge's own registry reads and probes have no client to charge.
    let trace = Trace::fresh(None);
    let mut table = None;
    for origin in &origins {
        let call = OriginCall::get("/regions".to_owned(), &trace);
        let keys = base.origin_keys.as_ref();
        let Ok((200, body)) = upstream::call_origin(keys, origin, &call, timeout).await else {
            continue;
        };
        if let Ok(list) = serde_json::from_slice::<RegionList>(&body)
            && let Some(t) = RegionTable::from_registry(&base, &list, now_ms())
        {
            table = Some(t);
            break;
        }
    }
    let table = table.unwrap_or_else(|| RegionTable::fallback(&base, now_ms()));
    let probes: Vec<(RegionName, String)> = table
        .regions
        .iter()
        .map(|r| (r.name.clone(), r.origin.clone()))
        .collect();
    LIVE.with(|l| {
        let mut l = l.borrow_mut();
        // Installed only if the deployment did not change meanwhile.
        if l.base.as_ref().is_some_and(|b| Rc::ptr_eq(b, &base)) {
            l.install(table);
        }
    });
    let trace = &trace;
    let keys = base.origin_keys.as_ref();
    futures_util::future::join_all(probes.into_iter().map(|(name, origin)| async move {
        let call = OriginCall::get("/health".to_owned(), trace);
        let started = now_ms();
        if upstream::call_origin(keys, &origin, &call, timeout)
            .await
            .is_ok()
        {
            upstream::observe_rtt(&name, now_ms().saturating_sub(started) as f64);
        }
    }))
    .await;
    LIVE.with(|l| l.borrow_mut().refreshing_since = None);
}
