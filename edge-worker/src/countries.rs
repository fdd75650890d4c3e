//! Built-in country -> continent table covering every ISO 3166-1 alpha-2 code (plus `XK`, which
//! Cloudflare reports for Kosovo). The default geo routing maps a continent to a region, so the
//! edge routes every country somewhere sensible even when `COUNTRY_REGIONS` says nothing about it.
//!
//! Continents follow the usual geographic assignment (e.g. the GeoNames one): transcontinental
//! countries sit where most of their population is (RU, CY in Europe; TR, GE, AM, AZ, KZ in Asia).

/// A continent, as Cloudflare's `request.cf.continent` abbreviates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Continent {
    Africa,
    Antarctica,
    Asia,
    Europe,
    NorthAmerica,
    Oceania,
    SouthAmerica,
}

impl Continent {
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
    pub fn code(self) -> &'static str {
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

    pub fn from_code(code: &str) -> Option<Continent> {
        Continent::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(code))
    }
}

/// The continent of an ISO 3166-1 alpha-2 country code (case-insensitive), or `None` for codes
/// that are not countries (Cloudflare's `XX` unknown, `T1` Tor, anything malformed).
pub fn continent_of(country: &str) -> Option<Continent> {
    let bytes = country.as_bytes();
    if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
    // Both bytes are ASCII letters, so this cannot fail.
    let code = std::str::from_utf8(&upper).ok()?;
    let continent = match code {
        "AO" | "BF" | "BI" | "BJ" | "BW" | "CD" | "CF" | "CG" | "CI" | "CM" | "CV" | "DJ"
        | "DZ" | "EG" | "EH" | "ER" | "ET" | "GA" | "GH" | "GM" | "GN" | "GQ" | "GW" | "KE"
        | "KM" | "LR" | "LS" | "LY" | "MA" | "MG" | "ML" | "MR" | "MU" | "MW" | "MZ" | "NA"
        | "NE" | "NG" | "RE" | "RW" | "SC" | "SD" | "SH" | "SL" | "SN" | "SO" | "SS" | "ST"
        | "SZ" | "TD" | "TG" | "TN" | "TZ" | "UG" | "YT" | "ZA" | "ZM" | "ZW" => Continent::Africa,
        "AQ" | "BV" | "GS" | "HM" | "TF" => Continent::Antarctica,
        "AE" | "AF" | "AM" | "AZ" | "BD" | "BH" | "BN" | "BT" | "CC" | "CN" | "CX" | "GE"
        | "HK" | "ID" | "IL" | "IN" | "IO" | "IQ" | "IR" | "JO" | "JP" | "KG" | "KH" | "KP"
        | "KR" | "KW" | "KZ" | "LA" | "LB" | "LK" | "MM" | "MN" | "MO" | "MV" | "MY" | "NP"
        | "OM" | "PH" | "PK" | "PS" | "QA" | "SA" | "SG" | "SY" | "TH" | "TJ" | "TL" | "TM"
        | "TR" | "TW" | "UZ" | "VN" | "YE" => Continent::Asia,
        "AD" | "AL" | "AT" | "AX" | "BA" | "BE" | "BG" | "BY" | "CH" | "CY" | "CZ" | "DE"
        | "DK" | "EE" | "ES" | "FI" | "FO" | "FR" | "GB" | "GG" | "GI" | "GR" | "HR" | "HU"
        | "IE" | "IM" | "IS" | "IT" | "JE" | "LI" | "LT" | "LU" | "LV" | "MC" | "MD" | "ME"
        | "MK" | "MT" | "NL" | "NO" | "PL" | "PT" | "RO" | "RS" | "RU" | "SE" | "SI" | "SJ"
        | "SK" | "SM" | "UA" | "VA" | "XK" => Continent::Europe,
        "AG" | "AI" | "AW" | "BB" | "BL" | "BM" | "BQ" | "BS" | "BZ" | "CA" | "CR" | "CU"
        | "CW" | "DM" | "DO" | "GD" | "GL" | "GP" | "GT" | "HN" | "HT" | "JM" | "KN" | "KY"
        | "LC" | "MF" | "MQ" | "MS" | "MX" | "NI" | "PA" | "PM" | "PR" | "SV" | "SX" | "TC"
        | "TT" | "US" | "VC" | "VG" | "VI" => Continent::NorthAmerica,
        "AS" | "AU" | "CK" | "FJ" | "FM" | "GU" | "KI" | "MH" | "MP" | "NC" | "NF" | "NR"
        | "NU" | "NZ" | "PF" | "PG" | "PN" | "PW" | "SB" | "TK" | "TO" | "TV" | "UM" | "VU"
        | "WF" | "WS" => Continent::Oceania,
        "AR" | "BO" | "BR" | "CL" | "CO" | "EC" | "FK" | "GF" | "GY" | "PE" | "PY" | "SR"
        | "UY" | "VE" => Continent::SouthAmerica,
        _ => return None,
    };
    Some(continent)
}

/// The default continent -> region assignment for the three regions of the reference deployment
/// (eu, us, asia). Entries naming a region the deployment does not have are ignored by
/// [`crate::config`], so countries of such a continent fall back to the default region.
pub const DEFAULT_CONTINENT_REGIONS: [(Continent, &str); 7] = [
    (Continent::Africa, "eu"),
    (Continent::Antarctica, "us"),
    (Continent::Asia, "asia"),
    (Continent::Europe, "eu"),
    (Continent::NorthAmerica, "us"),
    (Continent::Oceania, "asia"),
    (Continent::SouthAmerica, "us"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The 249 officially assigned ISO 3166-1 alpha-2 codes, listed independently of the table
    /// above (alphabetically) so a code forgotten there is caught here.
    const ISO_3166_1: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
        BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
        CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
        DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
        GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
        ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
        LA LB LC LI LK LR LS LT LU LV LY \
        MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
        NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
        RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
        TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
        VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

    #[test]
    fn every_iso_code_has_a_continent() {
        let codes: Vec<&str> = ISO_3166_1.split_whitespace().collect();
        assert_eq!(codes.len(), 249);
        let missing: Vec<&str> = codes
            .iter()
            .copied()
            .filter(|c| continent_of(c).is_none())
            .collect();
        assert!(missing.is_empty(), "no continent for {missing:?}");
    }

    #[test]
    fn the_table_holds_nothing_but_iso_codes_and_xk() {
        // Enumerate every two-letter code: only the ISO list plus XK may have a continent.
        let iso: Vec<&str> = ISO_3166_1.split_whitespace().collect();
        let mut per_continent: BTreeMap<Continent, usize> = BTreeMap::new();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                if let Some(c) = continent_of(&code) {
                    assert!(
                        iso.contains(&code.as_str()) || code == "XK",
                        "{code} is not an ISO code"
                    );
                    *per_continent.entry(c).or_default() += 1;
                }
            }
        }
        assert_eq!(per_continent.values().sum::<usize>(), 250);
        assert_eq!(per_continent[&Continent::Antarctica], 5);
        assert_eq!(per_continent[&Continent::SouthAmerica], 14);
    }

    #[test]
    fn well_known_countries() {
        for (code, want) in [
            ("DE", Continent::Europe),
            ("gb", Continent::Europe),
            ("RU", Continent::Europe),
            ("US", Continent::NorthAmerica),
            ("MX", Continent::NorthAmerica),
            ("BR", Continent::SouthAmerica),
            ("JP", Continent::Asia),
            ("IN", Continent::Asia),
            ("TR", Continent::Asia),
            ("AU", Continent::Oceania),
            ("NG", Continent::Africa),
            ("ZA", Continent::Africa),
        ] {
            assert_eq!(continent_of(code), Some(want), "{code}");
        }
    }

    #[test]
    fn non_countries_have_no_continent() {
        for code in ["XX", "T1", "", "D", "DEU", "1A", "é"] {
            assert_eq!(continent_of(code), None, "{code:?}");
        }
    }

    #[test]
    fn continent_codes_round_trip() {
        for c in Continent::ALL {
            assert_eq!(Continent::from_code(c.code()), Some(c));
        }
        assert_eq!(Continent::from_code("eu"), Some(Continent::Europe));
        assert_eq!(Continent::from_code("XX"), None);
        // Every continent has a default region.
        for c in Continent::ALL {
            assert!(DEFAULT_CONTINENT_REGIONS.iter().any(|(k, _)| *k == c));
        }
    }
}
