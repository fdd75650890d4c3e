//! Which region serves a request, and in which order the others are tried when it fails.

use api::{RegionName, RoutedBy};

use crate::config::{Config, Policy, Region};
use crate::live::{Measurements, RegionTable};

/// What the edge knows about where the caller wants to be served.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteHints<'a> {
    /// `preferredRegion` from a start body (already a valid [`RegionName`]).
    pub preferred: Option<&'a RegionName>,
    /// The `x-user-region` header.
    pub header: Option<&'a str>,
    /// `request.cf.country` (ISO code), for `COUNTRY_REGIONS` overrides.
    pub country: Option<&'a str>,
    /// `request.cf.continent` (`AF`, `AN`, `AS`, `EU`, `NA`, `OC`, `SA`).
    pub continent: Option<&'a str>,
}

/// The first region to try: a configured preferred region, else a configured `x-user-region`,
/// else the caller's location (country override, then continent), else the default. Values
/// naming no configured region are ignored rather than rejected: a stale client preference
/// must not stop a player from starting a game.
pub fn select_region<'c>(cfg: &'c Config, hints: &RouteHints<'_>) -> (&'c RegionName, RoutedBy) {
    if let Some(r) = hints.preferred.and_then(|p| cfg.known_region(p.as_str())) {
        return (r, RoutedBy::Preference);
    }
    if let Some(r) = hints.header.and_then(|h| cfg.known_region(h.trim())) {
        return (r, RoutedBy::Header);
    }
    if let Some(r) = geo_region(cfg, hints) {
        return (r, RoutedBy::Geo);
    }
    (&cfg.default_region, RoutedBy::Default)
}

/// The routable region the caller's location maps to (country override, then continent).
fn geo_region<'c>(cfg: &'c Config, hints: &RouteHints<'_>) -> Option<&'c RegionName> {
    cfg.region_for_location(hints.country, hints.continent)
        .and_then(|r| cfg.known_region(r.as_str()))
}

/// What live routing measures: round trips, reported load, breaker health.
pub struct Signals<'a> {
    /// Round trips from this isolate, and the last latency choice.
    pub measurements: &'a Measurements,
    /// The region table (load as each region last reported it).
    pub table: &'a RegionTable,
    /// Whether a region's breaker lets calls through.
    pub healthy: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for Signals<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("measurements", self.measurements)
            .field("table", self.table)
            .finish_non_exhaustive()
    }
}

impl Signals<'_> {
    fn overloaded(&self, cfg: &Config, region: &str) -> bool {
        self.table
            .get(region)
            .and_then(|r| r.load)
            .is_some_and(|l| l.in_flight > cfg.live.load_threshold)
    }

    /// The latency choice: the healthy measured region with the lowest round trip, unless
    /// the previous choice is within the hysteresis of it. `Load` when the fastest healthy
    /// region was skipped for being over the load threshold. With a geo-mapped region `geo`
    /// (the `geo` policy comes later), geo decides among equals ([`geo_among_equals`]).
    fn by_latency<'c>(
        &self,
        cfg: &'c Config,
        geo: Option<&RegionName>,
    ) -> Option<(&'c RegionName, RoutedBy)> {
        let measured: Vec<(&'c RegionName, f64)> = cfg
            .regions
            .iter()
            .filter(|r| (self.healthy)(r.name.as_str()))
            .filter_map(|r| Some((&r.name, self.measurements.rtt_ms(r.name.as_str())?)))
            .collect();
        let fastest = |candidates: &[(&'c RegionName, f64)]| {
            candidates
                .iter()
                .copied()
                .min_by(|a, b| a.1.total_cmp(&b.1))
        };
        let overall = fastest(&measured)?;
        let usable: Vec<(&'c RegionName, f64)> = measured
            .iter()
            .copied()
            .filter(|(r, _)| !self.overloaded(cfg, r.as_str()))
            .collect();
        let best = fastest(&usable)?;
        if let Some(geo) = geo.and_then(|g| geo_among_equals(&usable, g, cfg.live.hysteresis_pct)) {
            return Some((geo, RoutedBy::Geo));
        }
        let keep = self.measurements.latency_choice.as_ref().and_then(|prev| {
            let (name, rtt) = usable.iter().find(|(r, _)| *r == prev)?;
            let margin = 1.0 + f64::from(cfg.live.hysteresis_pct) / 100.0;
            (*rtt <= best.1 * margin).then_some(*name)
        });
        let chosen = keep.unwrap_or(best.0);
        let why = if overall.0 == chosen || usable.iter().any(|(r, _)| *r == overall.0) {
            RoutedBy::Latency
        } else {
            RoutedBy::Load
        };
        Some((chosen, why))
    }
}

/// Round trips closer than this (ms) are equal for [`geo_among_equals`], whatever the
/// percentage: that much is measurement noise (origins on one busy machine), not distance;
/// regions on different continents differ by 60 ms and more, which latency still decides.
pub const GEO_EQUAL_MS: f64 = 15.0;

/// Geo among equals: the geo-mapped region `geo`, when latency sees no real difference. Among
/// the `usable` regions (healthy, measured, not over the load threshold; with their round
/// trips, ms), `geo` wins when it is one of them and within the latency hysteresis of the
/// fastest (at most `hysteresis_pct` % slower, or less than [`GEO_EQUAL_MS`] slower), and
/// another usable region is within it too. `None` leaves the choice to latency: `geo` is not
/// usable (unhealthy, drained, unmeasured, busy), is clearly slower, or is clearly the
/// fastest anyway (then latency decided it).
pub fn geo_among_equals<'c>(
    usable: &[(&'c RegionName, f64)],
    geo: &RegionName,
    hysteresis_pct: u32,
) -> Option<&'c RegionName> {
    let best = usable.iter().map(|(_, rtt)| *rtt).min_by(f64::total_cmp)?;
    let margin = 1.0 + f64::from(hysteresis_pct) / 100.0;
    let equal = |rtt: f64| rtt <= best * margin || rtt - best < GEO_EQUAL_MS;
    let (name, rtt) = usable.iter().find(|(r, _)| *r == geo)?;
    let contested = usable.iter().any(|(r, other)| *r != geo && equal(*other));
    (equal(*rtt) && contested).then_some(*name)
}

/// The region of a start under the configured policy order (`ROUTING_POLICY`): the explicit
/// ones (preference, header), then `latency` (where the geo-mapped region is among the
/// equally fast ones, it wins as `geo`), `load` (from there on, a region over the load
/// threshold is replaced by the first one under it, reported as `load`), `geo`, `default`.
pub fn select_start<'c>(
    cfg: &'c Config,
    hints: &RouteHints<'_>,
    signals: &Signals<'_>,
) -> (&'c RegionName, RoutedBy) {
    let mut skip_loaded = false;
    let unloaded = |skip_loaded: bool, first: &'c RegionName, rule: RoutedBy| {
        if skip_loaded
            && signals.overloaded(cfg, first.as_str())
            && let Some(r) = cfg.regions.iter().find(|r| {
                (signals.healthy)(r.name.as_str()) && !signals.overloaded(cfg, r.name.as_str())
            })
        {
            return (&r.name, RoutedBy::Load);
        }
        (first, rule)
    };
    for policy in &cfg.live.policy {
        match policy {
            Policy::Preference => {
                if let Some(r) = hints.preferred.and_then(|p| cfg.known_region(p.as_str())) {
                    return (r, RoutedBy::Preference);
                }
            }
            Policy::Header => {
                if let Some(r) = hints.header.and_then(|h| cfg.known_region(h.trim())) {
                    return (r, RoutedBy::Header);
                }
            }
            Policy::Latency => {
                // Geo among equals only where the order asks for geo at all.
                let geo = cfg
                    .live
                    .policy
                    .contains(&Policy::Geo)
                    .then(|| geo_region(cfg, hints))
                    .flatten();
                if let Some(choice) = signals.by_latency(cfg, geo) {
                    return choice;
                }
            }
            Policy::Load => skip_loaded = true,
            Policy::Geo => {
                if let Some(r) = geo_region(cfg, hints) {
                    return unloaded(skip_loaded, r, RoutedBy::Geo);
                }
            }
            Policy::Default => {
                return unloaded(skip_loaded, &cfg.default_region, RoutedBy::Default);
            }
        }
    }
    unloaded(skip_loaded, &cfg.default_region, RoutedBy::Default)
}

/// `first`, then every other region in the configured failover order.
pub fn attempt_order<'c>(cfg: &'c Config, first: &str) -> Vec<&'c Region> {
    let first = cfg.region(first);
    first
        .into_iter()
        .chain(
            cfg.regions
                .iter()
                .filter(|r| Some(r.name.as_str()) != first.map(|f| f.name.as_str())),
        )
        .collect()
}

/// `routedBy` for a start served by `served` when `first` was chosen by `rule`.
pub fn routed_by(first: &RegionName, rule: RoutedBy, served: &RegionName) -> RoutedBy {
    if first == served {
        rule
    } else {
        RoutedBy::Failover
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config, local};
    use crate::config::{COUNTRY_REGIONS, FAILOVER_ORDER};

    fn name(s: &str) -> RegionName {
        RegionName::parse(s).unwrap()
    }

    fn names(order: &[&Region]) -> Vec<String> {
        order.iter().map(|r| r.name.to_string()).collect()
    }

    #[test]
    fn selection_table() {
        let c = local();
        let (asia, mars) = (name("asia"), name("mars"));
        let hints = |preferred, header, country, continent| RouteHints {
            preferred,
            header,
            country,
            continent,
        };
        let table: &[(RouteHints<'_>, &str, RoutedBy)] = &[
            (
                hints(Some(&asia), Some("us"), Some("DE"), Some("EU")),
                "asia",
                RoutedBy::Preference,
            ),
            (
                hints(Some(&mars), Some("us"), Some("DE"), Some("EU")),
                "us",
                RoutedBy::Header,
            ),
            (
                hints(None, Some(" us "), None, None),
                "us",
                RoutedBy::Header,
            ),
            (
                hints(None, Some("US"), Some("JP"), Some("AS")),
                "asia",
                RoutedBy::Geo,
            ),
            (
                hints(None, Some("mars"), Some("JP"), Some("AS")),
                "asia",
                RoutedBy::Geo,
            ),
            (
                hints(None, None, Some("BR"), Some("SA")),
                "us",
                RoutedBy::Geo,
            ),
            (hints(None, None, None, Some("eu")), "eu", RoutedBy::Geo),
            (hints(None, None, Some("XX"), None), "eu", RoutedBy::Default),
            (
                hints(None, None, Some("T1"), Some("T1")),
                "eu",
                RoutedBy::Default,
            ),
            (
                hints(Some(&mars), Some("venus"), None, None),
                "eu",
                RoutedBy::Default,
            ),
            (hints(None, None, None, None), "eu", RoutedBy::Default),
        ];
        for (h, region, rule) in table {
            let (got, why) = select_region(&c, h);
            assert_eq!((got.as_str(), why), (*region, *rule), "{h:?}");
        }
    }

    #[test]
    fn geo_uses_country_overrides_before_the_continent() {
        let c = config(&[(COUNTRY_REGIONS, r#"{"JP":"us"}"#)]).unwrap();
        let h = RouteHints {
            country: Some("JP"),
            continent: Some("AS"),
            ..RouteHints::default()
        };
        let (got, why) = select_region(&c, &h);
        assert_eq!((got.as_str(), why), ("us", RoutedBy::Geo));
    }

    #[test]
    fn failover_order_starts_with_the_chosen_region() {
        let c = local();
        assert_eq!(names(&attempt_order(&c, "eu")), ["eu", "us", "asia"]);
        assert_eq!(names(&attempt_order(&c, "us")), ["us", "eu", "asia"]);
        assert_eq!(names(&attempt_order(&c, "asia")), ["asia", "eu", "us"]);
        assert_eq!(names(&attempt_order(&c, "mars")), ["eu", "us", "asia"]);
        let c = config(&[(FAILOVER_ORDER, "asia,us,eu")]).unwrap();
        assert_eq!(names(&attempt_order(&c, "us")), ["us", "asia", "eu"]);
        assert_eq!(attempt_order(&c, "us")[0].origin, "http://127.0.0.1:8082");
    }

    #[test]
    fn routed_by_reports_failover_when_another_region_served() {
        let (eu, us) = (name("eu"), name("us"));
        assert_eq!(routed_by(&eu, RoutedBy::Geo, &eu), RoutedBy::Geo);
        assert_eq!(routed_by(&eu, RoutedBy::Geo, &us), RoutedBy::Failover);
    }

    mod live {
        use super::*;
        use crate::live::{Measurements, RegionTable};
        use api::regions::{RegionList, RegionLoad, RegionRecord, RegionStatus};

        fn table(loads: &[(&str, u32)]) -> RegionTable {
            let c = local();
            let regions = loads
                .iter()
                .map(|(n, l)| RegionRecord {
                    name: name(n),
                    url: format!("http://127.0.0.1/{n}"),
                    version: "1".into(),
                    status: RegionStatus::Active,
                    load: RegionLoad {
                        in_flight: *l,
                        ..RegionLoad::default()
                    },
                    heartbeat_at: 0,
                    ttl_seconds: 3,
                    signature: None,
                    expires_at: None,
                })
                .collect();
            let list = RegionList {
                served_by: name("eu"),
                now: 0,
                regions,
            };
            RegionTable::from_registry(&c, &list, 0).unwrap()
        }

        fn pick(
            cfg: &Config,
            t: &RegionTable,
            m: &Measurements,
            hints: &RouteHints<'_>,
            healthy: &dyn Fn(&str) -> bool,
        ) -> (String, RoutedBy) {
            let s = Signals {
                measurements: m,
                table: t,
                healthy,
            };
            let (r, why) = select_start(cfg, hints, &s);
            (r.to_string(), why)
        }

        #[test]
        fn latency_picks_the_fastest_healthy_region_after_explicit_hints() {
            let c = local();
            let t = table(&[("eu", 0), ("us", 0), ("asia", 0)]);
            let mut m = Measurements::default();
            m.observe(&name("eu"), 50.0);
            m.observe(&name("us"), 5.0);
            m.observe(&name("asia"), 20.0);
            let all = |_: &str| true;
            let geo = RouteHints {
                country: Some("JP"),
                continent: Some("AS"),
                ..RouteHints::default()
            };
            assert_eq!(
                pick(&c, &t, &m, &geo, &all),
                ("us".into(), RoutedBy::Latency)
            );
            let asia = name("asia");
            let pref = RouteHints {
                preferred: Some(&asia),
                ..geo
            };
            assert_eq!(
                pick(&c, &t, &m, &pref, &all),
                ("asia".into(), RoutedBy::Preference)
            );
            let no_us = |r: &str| r != "us";
            assert_eq!(
                pick(&c, &t, &m, &geo, &no_us),
                ("asia".into(), RoutedBy::Latency)
            );
            // Without measurements, geo decides.
            let empty = Measurements::default();
            assert_eq!(
                pick(&c, &t, &empty, &geo, &all),
                ("asia".into(), RoutedBy::Geo)
            );
        }

        /// A client in Japan (geo: asia).
        fn from_japan() -> RouteHints<'static> {
            RouteHints {
                country: Some("JP"),
                continent: Some("AS"),
                ..RouteHints::default()
            }
        }

        fn measured(rtts: &[(&str, f64)]) -> Measurements {
            let mut m = Measurements::default();
            for (r, ms) in rtts {
                m.observe(&name(r), *ms);
            }
            m
        }

        #[test]
        fn geo_decides_among_equally_fast_regions() {
            let c = local();
            let t = table(&[("eu", 0), ("us", 0), ("asia", 0)]);
            let all = |_: &str| true;
            // Origins on one machine: a millisecond or two apart is no difference.
            let laptop = measured(&[("eu", 1.0), ("us", 1.4), ("asia", 2.6)]);
            assert_eq!(
                pick(&c, &t, &laptop, &from_japan(), &all),
                ("asia".into(), RoutedBy::Geo)
            );
            // Within the hysteresis percentage (25 %) of the fastest.
            let near = measured(&[("eu", 100.0), ("us", 140.0), ("asia", 120.0)]);
            assert_eq!(
                pick(&c, &t, &near, &from_japan(), &all),
                ("asia".into(), RoutedBy::Geo)
            );
            // Even over a kept latency choice.
            let mut kept = near.clone();
            kept.latency_choice = Some(name("eu"));
            assert_eq!(
                pick(&c, &t, &kept, &from_japan(), &all),
                ("asia".into(), RoutedBy::Geo)
            );
        }

        #[test]
        fn latency_decides_real_differences() {
            let c = local();
            let t = table(&[("eu", 0), ("us", 0), ("asia", 0)]);
            let all = |_: &str| true;
            let far = measured(&[("eu", 50.0), ("us", 60.0), ("asia", 100.0)]);
            assert_eq!(
                pick(&c, &t, &far, &from_japan(), &all),
                ("eu".into(), RoutedBy::Latency),
                "asia is 50 ms (100 %) slower"
            );
            // Geo clearly fastest: latency chose it.
            let fast = measured(&[("eu", 50.0), ("us", 60.0), ("asia", 20.0)]);
            assert_eq!(
                pick(&c, &t, &fast, &from_japan(), &all),
                ("asia".into(), RoutedBy::Latency)
            );
        }

        #[test]
        fn an_unusable_geo_region_loses() {
            let c = local();
            let t = table(&[("eu", 0), ("us", 0), ("asia", 0)]);
            let laptop = measured(&[("eu", 1.0), ("us", 1.2), ("asia", 1.5)]);
            // Unhealthy (breaker open).
            let no_asia = |r: &str| r != "asia";
            assert_eq!(
                pick(&c, &t, &laptop, &from_japan(), &no_asia),
                ("eu".into(), RoutedBy::Latency)
            );
            // Drained: not in the effective configuration.
            let mut drained = t.clone();
            drained.regions.iter_mut().for_each(|r| {
                if r.name.as_str() == "asia" {
                    r.status = api::regions::RegionStatus::Draining;
                }
            });
            let eff = drained.effective(&c);
            assert_eq!(
                pick(&eff, &drained, &laptop, &from_japan(), &|_: &str| true),
                ("eu".into(), RoutedBy::Latency)
            );
            // Not measured yet.
            let unmeasured = measured(&[("eu", 1.0), ("us", 1.2)]);
            assert_eq!(
                pick(&c, &t, &unmeasured, &from_japan(), &|_: &str| true),
                ("eu".into(), RoutedBy::Latency)
            );
            // Over the load threshold.
            let c10 = config(&[(crate::config::LOAD_THRESHOLD, "10")]).unwrap();
            let busy = table(&[("eu", 0), ("us", 0), ("asia", 50)]);
            assert_eq!(
                pick(&c10, &busy, &laptop, &from_japan(), &|_: &str| true),
                ("eu".into(), RoutedBy::Latency)
            );
        }

        #[test]
        fn without_geo_latency_is_unchanged() {
            let all = |_: &str| true;
            let t = table(&[("eu", 0), ("us", 0), ("asia", 0)]);
            let laptop = measured(&[("eu", 1.0), ("us", 1.2), ("asia", 1.5)]);
            // No location, or one mapped to no region.
            let c = local();
            for h in [
                RouteHints::default(),
                RouteHints {
                    country: Some("XX"),
                    ..RouteHints::default()
                },
            ] {
                assert_eq!(
                    pick(&c, &t, &laptop, &h, &all),
                    ("eu".into(), RoutedBy::Latency)
                );
            }
            // An order without geo never consults the location.
            let c = config(&[(
                crate::config::ROUTING_POLICY,
                "preference,header,latency,default",
            )])
            .unwrap();
            assert_eq!(
                pick(&c, &t, &laptop, &from_japan(), &all),
                ("eu".into(), RoutedBy::Latency)
            );
        }

        #[test]
        fn geo_among_equals_rules() {
            let (eu, us, asia) = (name("eu"), name("us"), name("asia"));
            let rtts = |v: [f64; 3]| [(&eu, v[0]), (&us, v[1]), (&asia, v[2])];
            let g = |v: [f64; 3], pct| geo_among_equals(&rtts(v), &asia, pct).cloned();
            assert_eq!(g([100.0, 200.0, 125.0], 25), Some(asia.clone()));
            assert_eq!(g([100.0, 200.0, 126.0], 25), None);
            assert_eq!(g([100.0, 200.0, 126.0], 30), Some(asia.clone()));
            assert_eq!(g([1.0, 200.0, 15.9], 25), Some(asia.clone()), "noise");
            assert_eq!(g([1.0, 200.0, 16.0], 25), None);
            assert_eq!(g([100.0, 200.0, 50.0], 25), None, "alone at the top");
            assert_eq!(
                g([100.0, 200.0, 90.0], 25),
                Some(asia.clone()),
                "eu is close"
            );
            assert_eq!(geo_among_equals(&[(&eu, 1.0)], &asia, 25), None);
            assert_eq!(geo_among_equals(&[], &asia, 25), None);
        }

        #[test]
        fn hysteresis_keeps_a_choice_within_the_margin() {
            let c = local();
            let t = table(&[("eu", 0), ("us", 0)]);
            let mut m = Measurements::default();
            m.observe(&name("eu"), 100.0);
            m.observe(&name("us"), 92.0);
            m.latency_choice = Some(name("eu"));
            let all = |_: &str| true;
            let h = RouteHints::default();
            assert_eq!(
                pick(&c, &t, &m, &h, &all),
                ("eu".into(), RoutedBy::Latency),
                "us only 8 % faster"
            );
            let mut m2 = m.clone();
            m2.observe(&name("us"), 10.0);
            m2.observe(&name("us"), 10.0);
            assert_eq!(
                pick(&c, &t, &m2, &h, &all).0,
                "us",
                "much faster takes over"
            );
        }

        #[test]
        fn load_skips_busy_regions() {
            let c = config(&[(crate::config::LOAD_THRESHOLD, "10")]).unwrap();
            let t = table(&[("eu", 50), ("us", 0), ("asia", 3)]);
            let mut m = Measurements::default();
            m.observe(&name("eu"), 1.0);
            m.observe(&name("asia"), 20.0);
            let all = |_: &str| true;
            let h = RouteHints::default();
            assert_eq!(
                pick(&c, &t, &m, &h, &all),
                ("asia".into(), RoutedBy::Load),
                "the fastest (eu) is busy"
            );
            // Without measurements: the default (eu) is busy, so the first unloaded one.
            let empty = Measurements::default();
            assert_eq!(
                pick(&c, &t, &empty, &h, &all),
                ("us".into(), RoutedBy::Load)
            );
            // Policy order is configuration: without load, the default stands.
            let c = config(&[
                (crate::config::LOAD_THRESHOLD, "10"),
                (
                    crate::config::ROUTING_POLICY,
                    "preference,header,geo,default",
                ),
            ])
            .unwrap();
            assert_eq!(pick(&c, &t, &m, &h, &all), ("eu".into(), RoutedBy::Default));
        }
    }
}
