//! Which region serves a request, and in which order the others are tried when it fails.

use crate::config::Config;

/// Why a request went to the region that served it; echoed to the client as `routedBy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutedBy {
    Preference,
    Header,
    Geo,
    Default,
    Failover,
}

impl RoutedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutedBy::Preference => "preference",
            RoutedBy::Header => "header",
            RoutedBy::Geo => "geo",
            RoutedBy::Default => "default",
            RoutedBy::Failover => "failover",
        }
    }
}

/// What the edge knows about the caller's location.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteHints<'a> {
    /// `preferredRegion` from the request body.
    pub preferred: Option<&'a str>,
    /// The `x-user-region` header.
    pub header: Option<&'a str>,
    /// `request.cf.country`.
    pub country: Option<&'a str>,
}

/// The first region to try: a known preferred region, else a known `x-user-region`, else the
/// country's region, else the default. Unknown values are ignored rather than rejected: a stale
/// client preference must not stop a player from starting a game.
pub fn select_region<'c>(cfg: &'c Config, hints: &RouteHints<'_>) -> (&'c str, RoutedBy) {
    if let Some(r) = hints.preferred.and_then(|p| cfg.known_region(p)) {
        return (r, RoutedBy::Preference);
    }
    if let Some(r) = hints.header.and_then(|h| cfg.known_region(h)) {
        return (r, RoutedBy::Header);
    }
    if let Some(r) = hints.country.and_then(|c| cfg.region_for_country(c)) {
        return (r, RoutedBy::Geo);
    }
    (cfg.default_region.as_str(), RoutedBy::Default)
}

/// `first`, then every other region in the configured failover order.
pub fn attempt_order<'c>(cfg: &'c Config, first: &str) -> Vec<&'c str> {
    let first = cfg.known_region(first);
    first
        .into_iter()
        .chain(cfg.failover_order().filter(|r| Some(*r) != first))
        .collect()
}

/// `routedBy` for a response served by `served` when `first` was chosen by `rule`.
pub fn routed_by(first: &str, rule: RoutedBy, served: &str) -> RoutedBy {
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

    fn hints<'a>(
        preferred: Option<&'a str>,
        header: Option<&'a str>,
        country: Option<&'a str>,
    ) -> RouteHints<'a> {
        RouteHints {
            preferred,
            header,
            country,
        }
    }

    #[test]
    fn selection_table() {
        let c = local();
        let table: &[(RouteHints<'_>, &str, RoutedBy)] = &[
            (
                hints(Some("asia"), Some("us"), Some("DE")),
                "asia",
                RoutedBy::Preference,
            ),
            (
                hints(Some("ASIA"), None, None),
                "asia",
                RoutedBy::Preference,
            ),
            (
                hints(Some("mars"), Some("us"), Some("DE")),
                "us",
                RoutedBy::Header,
            ),
            (hints(Some(""), Some(" Us "), None), "us", RoutedBy::Header),
            (hints(None, Some("mars"), Some("JP")), "asia", RoutedBy::Geo),
            (hints(None, None, Some("BR")), "us", RoutedBy::Geo),
            (hints(None, None, Some("fr")), "eu", RoutedBy::Geo),
            (hints(None, None, Some("XX")), "eu", RoutedBy::Default),
            (hints(None, None, Some("T1")), "eu", RoutedBy::Default),
            (
                hints(Some("mars"), Some("venus"), None),
                "eu",
                RoutedBy::Default,
            ),
            (hints(None, None, None), "eu", RoutedBy::Default),
        ];
        for (h, region, rule) in table {
            assert_eq!(select_region(&c, h), (*region, *rule), "{h:?}");
        }
    }

    #[test]
    fn geo_uses_country_overrides() {
        let c = config(&[(COUNTRY_REGIONS, r#"{"JP":"us"}"#)]).unwrap();
        assert_eq!(
            select_region(&c, &hints(None, None, Some("JP"))),
            ("us", RoutedBy::Geo)
        );
    }

    #[test]
    fn failover_order_starts_with_the_chosen_region() {
        let c = local();
        assert_eq!(attempt_order(&c, "eu"), ["eu", "us", "asia"]);
        assert_eq!(attempt_order(&c, "us"), ["us", "eu", "asia"]);
        assert_eq!(attempt_order(&c, "asia"), ["asia", "eu", "us"]);
        assert_eq!(attempt_order(&c, "mars"), ["eu", "us", "asia"]);
        let c = config(&[(FAILOVER_ORDER, "asia,us,eu")]).unwrap();
        assert_eq!(attempt_order(&c, "us"), ["us", "asia", "eu"]);
    }

    #[test]
    fn routed_by_reports_failover_when_another_region_served() {
        assert_eq!(routed_by("eu", RoutedBy::Geo, "eu"), RoutedBy::Geo);
        assert_eq!(routed_by("eu", RoutedBy::Geo, "us"), RoutedBy::Failover);
        assert_eq!(RoutedBy::Failover.as_str(), "failover");
        assert_eq!(RoutedBy::Preference.as_str(), "preference");
    }
}
