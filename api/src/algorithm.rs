//! The engine's [`Algorithm`] on the wire: its stable name (`"mix32-v1"`, `"lcg32"`, ...).

use serde::{Deserialize, Deserializer, Serializer};
use shared_engine::Algorithm;

/// `#[serde(with = "crate::algorithm")]` for an `Algorithm` field.
pub(crate) fn serialize<S: Serializer>(algorithm: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(algorithm.as_str())
}

/// The inverse of [`serialize`]; unknown names list the valid ones.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
    let name = String::deserialize(d)?;
    Algorithm::parse(&name).map_err(|_| serde::de::Error::custom(unknown(&name)))
}

pub(crate) fn unknown(name: &str) -> String {
    let valid: Vec<String> = Algorithm::ALL
        .iter()
        .map(|a| format!("{:?}", a.as_str()))
        .collect();
    format!(
        "unknown algorithm {name:?}: expected one of {}",
        valid.join(", ")
    )
}

/// The same for `Option<Algorithm>`.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        algorithm: &Option<Algorithm>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match algorithm {
            Some(a) => s.serialize_some(a.as_str()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Algorithm>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(name) => Algorithm::parse(&name)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(unknown(&name))),
        }
    }
}
