//! Which region serves a request, and in which order the others are tried when it fails.

use api::{RegionName, RoutedBy};

use crate::config::{Config, Region};

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
    if let Some(r) = cfg.region_for_location(hints.country, hints.continent) {
        return (r, RoutedBy::Geo);
    }
    (&cfg.default_region, RoutedBy::Default)
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
}
