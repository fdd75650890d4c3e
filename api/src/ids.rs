//! Validated values: every identifier and bounded number a client sends is one of these, built
//! only through `parse` (serde deserializes through `parse` too), so code past the boundary
//! never sees an invalid one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::{
    MAX_BREAK_EVERY, MAX_IDEMPOTENCY_KEY_LEN, MAX_METADATA_BYTES, MAX_PLAYERS, MAX_REGION_LEN,
    MAX_TICK_MS, MAX_USER_ID_LEN, MIN_BREAK_EVERY, MIN_PLAYERS, MIN_TICK_MS,
};

/// Why a value was refused: a sentence fit for the client, without the field name (the caller
/// or the JSON path supplies that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue(pub String);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidValue {}

/// Implements the string plumbing of a validated string newtype.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A player's id: 1 to 64 of `A-Z a-z 0-9 . _ : @ -`. Never trimmed: what the client sends is
/// the id, or it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9._:@-]{1,64}$"))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct UserId(String);

impl UserId {
    /// The rule, as a regular expression (for the docs).
    pub const PATTERN: &'static str = r"^[A-Za-z0-9._:@-]{1,64}$";

    /// Validates a user id.
    pub fn parse(value: &str) -> Result<UserId, InvalidValue> {
        if value.is_empty() || value.len() > MAX_USER_ID_LEN {
            return Err(InvalidValue(format!(
                "must be 1 to {MAX_USER_ID_LEN} characters, got {}",
                value.chars().count()
            )));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:@".contains(&b))
        {
            return Err(InvalidValue(
                "may contain only letters, digits and . _ : @ -".into(),
            ));
        }
        Ok(UserId(value.to_owned()))
    }
}
string_newtype!(UserId);

/// A region name: 1 to 32 of `a-z 0-9 -` (it appears in URLs, metrics labels and config).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[a-z0-9-]{1,32}$"))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct RegionName(String);

impl RegionName {
    /// The rule, as a regular expression (for the docs).
    pub const PATTERN: &'static str = r"^[a-z0-9-]{1,32}$";

    /// Validates a region name.
    pub fn parse(value: &str) -> Result<RegionName, InvalidValue> {
        let ok = (1..=MAX_REGION_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(RegionName(value.to_owned()))
        } else {
            Err(InvalidValue(format!(
                "{value:?} is not a region name: 1 to {MAX_REGION_LEN} lowercase letters, digits or '-'"
            )))
        }
    }
}
string_newtype!(RegionName);

/// An `Idempotency-Key` (or client `x-request-id`): 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a header value.
    pub fn parse(value: &str) -> Result<IdempotencyKey, InvalidValue> {
        if (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(InvalidValue(format!(
                "must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            )))
        }
    }
}
string_newtype!(IdempotencyKey);

/// A game id: a UUID, written in its canonical hyphenated lowercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct GameId(uuid::Uuid);

impl GameId {
    /// Parses the hyphenated form (36 characters, any case).
    pub fn parse(value: &str) -> Result<GameId, InvalidValue> {
        if value.len() == 36
            && let Ok(id) = uuid::Uuid::try_parse(value)
        {
            return Ok(GameId(id));
        }
        Err(InvalidValue(
            "must be a UUID like 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b".into(),
        ))
    }

    /// The UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl From<uuid::Uuid> for GameId {
    fn from(id: uuid::Uuid) -> GameId {
        GameId(id)
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl TryFrom<String> for GameId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<GameId, InvalidValue> {
        GameId::parse(&value)
    }
}

impl From<GameId> for String {
    fn from(value: GameId) -> String {
        value.to_string()
    }
}

/// Declares a `u32` newtype bounded to `$min..=$max`, built only through `parse` (serde
/// deserializes from any JSON integer through `parse`, and serializes the plain number).
/// Refusals read "must be MIN..=MAX<unit>, got VALUE" (`unit` may be empty).
macro_rules! bounded_int {
    (
        $(#[$doc:meta])*
        $name:ident, $min:expr, $max:expr, unit = $unit:literal,
        parse = $parse_doc:literal, get = $get_doc:literal $(,)?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u32")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = u32))]
        #[cfg_attr(test, derive(ts_rs::TS))]
        #[cfg_attr(test, ts(type = "number"))]
        pub struct $name(u32);

        impl $name {
            #[doc = $parse_doc]
            pub fn parse(value: u64) -> Result<$name, InvalidValue> {
                match u32::try_from(value) {
                    Ok(v) if ($min..=$max).contains(&v) => Ok($name(v)),
                    _ => Err(InvalidValue(format!(
                        concat!("must be {}..={}", $unit, ", got {}"),
                        $min, $max, value
                    ))),
                }
            }

            #[doc = $get_doc]
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<u64> for $name {
            type Error = InvalidValue;
            fn try_from(value: u64) -> Result<$name, InvalidValue> {
                $name::parse(value)
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.0
            }
        }
    };
}

bounded_int! {
    /// Milliseconds per step, `1..=60000`.
    TickMs, MIN_TICK_MS, MAX_TICK_MS, unit = " (ms per step)",
    parse = "Validates a tick length.", get = "The milliseconds.",
}

bounded_int! {
    /// Break odds `1/n`, `n` in `2..=1000000`.
    BreakEvery, MIN_BREAK_EVERY, MAX_BREAK_EVERY, unit = "",
    parse = "Validates break odds.", get = "The odds' denominator.",
}

bounded_int! {
    /// Seats of a shared game, `2..=100` (the creator's seat included).
    MaxPlayers, MIN_PLAYERS, MAX_PLAYERS, unit = " (players)",
    parse = "Validates a seat count.", get = "The number of seats.",
}

/// A client's free-form JSON object, at most 4 KiB serialized.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = Object))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "Record<string, unknown>"))]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Validates an object's size.
    pub fn parse(map: Map<String, Value>) -> Result<Metadata, InvalidValue> {
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > MAX_METADATA_BYTES {
            return Err(InvalidValue(format!(
                "must be at most {MAX_METADATA_BYTES} bytes of JSON, got {size}"
            )));
        }
        Ok(Metadata(map))
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object as compact JSON text (how it is stored).
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

impl TryFrom<Map<String, Value>> for Metadata {
    type Error = InvalidValue;
    fn try_from(map: Map<String, Value>) -> Result<Metadata, InvalidValue> {
        Metadata::parse(map)
    }
}

impl From<Metadata> for Map<String, Value> {
    fn from(value: Metadata) -> Map<String, Value> {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_one_rule() {
        assert!(UserId::parse("alice_01@example.com").is_ok());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            " alice",
            "alice ",
            "bob smith",
            "é",
            "robert'); DROP TABLE",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        let parsed: Result<UserId, _> = serde_json::from_str("\"a b\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn region_names_refuse_underscores_and_capitals() {
        assert!(RegionName::parse("eu").is_ok());
        assert!(RegionName::parse("us-east-2").is_ok());
        for bad in ["", "eu_west", "EU", "a/b", &"r".repeat(33)] {
            assert!(RegionName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn game_ids_are_canonical_uuids() {
        let id = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";
        assert_eq!(GameId::parse(id).unwrap().to_string(), id);
        assert_eq!(
            GameId::parse(&id.to_uppercase()).unwrap().to_string(),
            id,
            "printed lowercase"
        );
        for bad in [
            "3f2b8c1e9d4a4f6b8e2a1c5d7e9f0a3b",
            "nope",
            "sess_3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b",
            "{3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b}",
        ] {
            assert!(GameId::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&GameId::parse(id).unwrap()).unwrap();
        assert_eq!(json, format!("\"{id}\""));
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("a7c1-retry").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(TickMs::parse(1).unwrap().get(), 1);
        assert!(TickMs::parse(0).is_err());
        assert!(TickMs::parse(60_001).is_err());
        assert!(TickMs::parse(u64::MAX).is_err());
        assert!(BreakEvery::parse(1).is_err());
        assert_eq!(BreakEvery::parse(1_000_000).unwrap().get(), 1_000_000);
        assert!(serde_json::from_str::<TickMs>("-1").is_err());
        assert!(serde_json::from_str::<TickMs>("1.5").is_err());
        assert!(serde_json::from_str::<TickMs>("\"100\"").is_err());
    }

    #[test]
    fn bounded_numbers_say_their_range() {
        let refusal = |r: Result<u32, InvalidValue>| r.unwrap_err().0;
        assert_eq!(
            refusal(TickMs::parse(0).map(u32::from)),
            "must be 1..=60000 (ms per step), got 0"
        );
        assert_eq!(
            refusal(BreakEvery::parse(u64::MAX).map(u32::from)),
            format!("must be 2..=1000000, got {}", u64::MAX)
        );
        assert_eq!(
            serde_json::to_string(&TickMs::parse(250).unwrap()).unwrap(),
            "250"
        );
        assert_eq!(
            serde_json::from_str::<BreakEvery>("50").unwrap(),
            BreakEvery::try_from(50).unwrap()
        );
    }

    #[test]
    fn metadata_is_a_small_object() {
        assert!(serde_json::from_str::<Metadata>(r#"{"mode":"duel"}"#).is_ok());
        assert!(serde_json::from_str::<Metadata>("[1]").is_err());
        let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(5_000));
        assert!(serde_json::from_str::<Metadata>(&big).is_err());
    }
}
