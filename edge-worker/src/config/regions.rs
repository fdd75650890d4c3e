//! The region variables: which regions exist and where their origins are (`REGION_ORIGINS`),
//! the order they are tried in (`FAILOVER_ORDER`), and geo routing: a per-country override map
//! (`COUNTRY_REGIONS`) on top of a continent map (`CONTINENT_REGIONS` over built-in defaults).
//!
//! Region names follow the contract's [`RegionName`] rule (lowercase letters, digits, `-`),
//! the same rule clients' `preferredRegion` and origins' `REGION` obey.

use std::collections::BTreeMap;

use api::RegionName;

use super::SettingsError;
use super::vars::{
    CONTINENT_REGIONS, COUNTRY_REGIONS, FAILOVER_ORDER, REGION_ORIGINS, json_object, string_value,
};

/// A continent, as Cloudflare's `request.cf.continent` abbreviates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Continent {
    /// `AF`.
    Africa,
    /// `AN`.
    Antarctica,
    /// `AS`.
    Asia,
    /// `EU`.
    Europe,
    /// `NA`.
    NorthAmerica,
    /// `OC`.
    Oceania,
    /// `SA`.
    SouthAmerica,
}

impl Continent {
    /// Every continent.
    pub const ALL: [Continent; 7] = [
        Continent::Africa,
        Continent::Antarctica,
        Continent::Asia,
        Continent::Europe,
        Continent::NorthAmerica,
        Continent::Oceania,
        Continent::SouthAmerica,
    ];

    /// Two-letter code, as in `request.cf.continent`.
    pub const fn code(self) -> &'static str {
        match self {
            Continent::Africa => "AF",
            Continent::Antarctica => "AN",
            Continent::Asia => "AS",
            Continent::Europe => "EU",
            Continent::NorthAmerica => "NA",
            Continent::Oceania => "OC",
            Continent::SouthAmerica => "SA",
        }
    }

    /// The continent of a code (case-insensitive, surrounding blanks ignored).
    pub fn from_code(code: &str) -> Option<Continent> {
        let code = code.trim();
        Continent::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(code))
    }
}

/// The default continent -> region assignment for the three regions of the reference deployment
/// (eu, us, asia). Entries naming a region the deployment does not have are dropped, so clients
/// on such a continent fall back to the default region.
pub const DEFAULT_CONTINENT_REGIONS: [(Continent, &str); 7] = [
    (Continent::Africa, "eu"),
    (Continent::Antarctica, "us"),
    (Continent::Asia, "asia"),
    (Continent::Europe, "eu"),
    (Continent::NorthAmerica, "us"),
    (Continent::Oceania, "asia"),
    (Continent::SouthAmerica, "us"),
];

/// Regions and their origins, by name.
pub(crate) type Origins = BTreeMap<RegionName, String>;

/// A region name read from `variable`, refused with the contract's rule.
pub(crate) fn region_name(variable: &'static str, raw: &str) -> Result<RegionName, SettingsError> {
    RegionName::parse(raw).map_err(|e| SettingsError::new(variable, e.to_string()))
}

/// A region that must be one of `origins`.
pub(crate) fn known_region(
    variable: &'static str,
    raw: &str,
    origins: &Origins,
) -> Result<RegionName, SettingsError> {
    let name = region_name(variable, raw)?;
    if origins.contains_key(&name) {
        Ok(name)
    } else {
        Err(SettingsError::new(
            variable,
            format!(
                "{:?} is not a region of {REGION_ORIGINS} ({})",
                name.as_str(),
                known_list(origins)
            ),
        ))
    }
}

fn known_list(origins: &Origins) -> String {
    let names: Vec<&str> = origins.keys().map(RegionName::as_str).collect();
    format!("known: {}", names.join(", "))
}

/// Validates an origin base URL and returns it without trailing slashes.
fn origin_url(region: &RegionName, url: &str) -> Result<String, SettingsError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            SettingsError::new(
                REGION_ORIGINS,
                format!(
                    "origin of {:?} must start with http:// or https:// (got {url:?})",
                    region.as_str()
                ),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || url.contains(['?', '#', ' ']) {
        return Err(SettingsError::new(
            REGION_ORIGINS,
            format!(
                "origin of {:?} is not a base URL (got {url:?})",
                region.as_str()
            ),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `REGION_ORIGINS`: at least one region, each with an http(s) base URL.
pub(crate) fn parse_region_origins(raw: &str) -> Result<Origins, SettingsError> {
    let map = json_object(REGION_ORIGINS, raw)?;
    if map.is_empty() {
        return Err(SettingsError::new(REGION_ORIGINS, "names no region"));
    }
    let mut origins = Origins::new();
    for (key, value) in &map {
        let name = region_name(REGION_ORIGINS, key)?;
        let url = origin_url(&name, string_value(REGION_ORIGINS, key, value)?)?;
        origins.insert(name, url);
    }
    Ok(origins)
}

/// `FAILOVER_ORDER` is a comma-separated list naming every region exactly once: being strict
/// here means a region can never be silently left out of failover.
pub(crate) fn parse_failover_order(
    raw: &str,
    origins: &Origins,
) -> Result<Vec<RegionName>, SettingsError> {
    let mut order: Vec<RegionName> = Vec::new();
    for item in raw.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(SettingsError::new(FAILOVER_ORDER, "has an empty entry"));
        }
        let name = known_region(FAILOVER_ORDER, item, origins)?;
        if order.contains(&name) {
            return Err(SettingsError::new(
                FAILOVER_ORDER,
                format!("{:?} is listed twice", name.as_str()),
            ));
        }
        order.push(name);
    }
    let missing: Vec<&str> = origins
        .keys()
        .filter(|k| !order.contains(k))
        .map(RegionName::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(SettingsError::new(
            FAILOVER_ORDER,
            format!("must list every region; missing {}", missing.join(", ")),
        ));
    }
    Ok(order)
}

/// `COUNTRY_REGIONS`: ISO 3166-1 alpha-2 code (any case) -> configured region.
pub(crate) fn parse_country_regions(
    raw: Option<&str>,
    origins: &Origins,
) -> Result<BTreeMap<String, RegionName>, SettingsError> {
    let mut out = BTreeMap::new();
    let Some(raw) = raw else {
        return Ok(out);
    };
    for (key, value) in &json_object(COUNTRY_REGIONS, raw)? {
        let code = key.trim().to_ascii_uppercase();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(SettingsError::new(
                COUNTRY_REGIONS,
                format!("{key:?} is not a two-letter country code"),
            ));
        }
        let region = known_region(
            COUNTRY_REGIONS,
            string_value(COUNTRY_REGIONS, key, value)?,
            origins,
        )?;
        out.insert(code, region);
    }
    Ok(out)
}

/// Built-in continent defaults (only those naming a configured region) overlaid with
/// `CONTINENT_REGIONS`, whose entries must all name configured regions.
pub(crate) fn parse_continent_regions(
    raw: Option<&str>,
    origins: &Origins,
) -> Result<BTreeMap<Continent, RegionName>, SettingsError> {
    let mut out: BTreeMap<Continent, RegionName> = DEFAULT_CONTINENT_REGIONS
        .iter()
        .filter_map(|(c, region)| {
            let name = RegionName::parse(region).ok()?;
            origins.contains_key(&name).then_some((*c, name))
        })
        .collect();
    let Some(raw) = raw else {
        return Ok(out);
    };
    for (key, value) in &json_object(CONTINENT_REGIONS, raw)? {
        let continent = Continent::from_code(key).ok_or_else(|| {
            SettingsError::new(
                CONTINENT_REGIONS,
                format!("{key:?} is not a continent code (AF, AN, AS, EU, NA, OC, SA)"),
            )
        })?;
        let region = known_region(
            CONTINENT_REGIONS,
            string_value(CONTINENT_REGIONS, key, value)?,
            origins,
        )?;
        out.insert(continent, region);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        parse_region_origins(
            r#"{"eu":"http://127.0.0.1:8081","us":"http://127.0.0.1:8082/","asia":"http://127.0.0.1:8083"}"#,
        )
        .unwrap()
    }

    #[test]
    fn continent_codes() {
        for c in Continent::ALL {
            assert_eq!(Continent::from_code(c.code()), Some(c));
        }
        assert_eq!(Continent::from_code(" eu "), Some(Continent::Europe));
        for bad in ["", "XX", "E", "EUR", "T1"] {
            assert_eq!(Continent::from_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn region_names_follow_the_contract() {
        for bad in [
            r#"{"eu_west":"http://x"}"#,
            r#"{"EU":"http://x"}"#,
            r#"{"e u":"http://x"}"#,
            r#"{"":"http://x"}"#,
        ] {
            let e = parse_region_origins(bad).unwrap_err();
            assert_eq!(e.variable, REGION_ORIGINS, "{bad}");
            assert!(e.message.contains("is not a region name"), "{e}");
        }
        let o = parse_region_origins(r#"{"us-east-2":"https://x.example/"}"#).unwrap();
        let name = RegionName::parse("us-east-2").unwrap();
        assert_eq!(o[&name], "https://x.example");
    }

    #[test]
    fn failover_order_entries_are_region_names() {
        let o = origins();
        let order = parse_failover_order(" asia , us,eu ", &o).unwrap();
        let names: Vec<&str> = order.iter().map(RegionName::as_str).collect();
        assert_eq!(names, ["asia", "us", "eu"]);
        let e = parse_failover_order("eu,us,as_ia", &o).unwrap_err();
        assert_eq!(e.variable, FAILOVER_ORDER);
        assert!(e.message.contains("not a region name"), "{e}");
    }

    #[test]
    fn default_continents_skip_unconfigured_regions() {
        let two = parse_region_origins(r#"{"eu":"http://a","us":"http://b"}"#).unwrap();
        let map = parse_continent_regions(None, &two).unwrap();
        assert_eq!(map.get(&Continent::Asia), None);
        assert_eq!(map[&Continent::Africa].as_str(), "eu");
        assert_eq!(map.len(), 5);
        let map = parse_continent_regions(Some(r#"{"as":"us"}"#), &two).unwrap();
        assert_eq!(map[&Continent::Asia].as_str(), "us");
    }
}
