//! Sealed games (`sealed-v1`, issue 24): the algorithm name a game may carry besides the
//! engine's seeded ones, and the view of its revealed round keys (`GET /game/{id}/rounds`).
//!
//! A sealed game's breaks come from a secret hash chain ([`shared_engine::sealed`]): its view
//! carries the chain's `commitment` from the start, each round's key is served only once the
//! round has broken by the server's clock, and the chain's root only once the game has ended.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use shared_engine::Algorithm;
use shared_engine::sealed::SEALED_V1;

use crate::ids::GameId;

/// The most keys one `GET /game/{id}/rounds` answers (a client pages on with `from`).
pub const MAX_ROUNDS_PAGE: u64 = 1_000;

/// A game's algorithm on the wire: one of the engine's seeded algorithms, or `sealed-v1`.
///
/// Serialized as its name; unknown names are refused naming every accepted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameAlgorithm {
    /// A seeded algorithm: every client computes every break from the seed.
    Engine(Algorithm),
    /// `sealed-v1`: breaks from a secret hash chain, revealed round by round.
    SealedV1,
}

impl Default for GameAlgorithm {
    fn default() -> GameAlgorithm {
        GameAlgorithm::Engine(Algorithm::default())
    }
}

impl From<Algorithm> for GameAlgorithm {
    fn from(algorithm: Algorithm) -> GameAlgorithm {
        GameAlgorithm::Engine(algorithm)
    }
}

impl GameAlgorithm {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GameAlgorithm::Engine(algorithm) => algorithm.as_str(),
            GameAlgorithm::SealedV1 => SEALED_V1,
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<GameAlgorithm> {
        if name == SEALED_V1 {
            return Some(GameAlgorithm::SealedV1);
        }
        Algorithm::parse(name).ok().map(GameAlgorithm::Engine)
    }

    /// The seeded algorithm, `None` for a sealed game (whose breaks no seed gives).
    pub const fn engine(self) -> Option<Algorithm> {
        match self {
            GameAlgorithm::Engine(algorithm) => Some(algorithm),
            GameAlgorithm::SealedV1 => None,
        }
    }

    /// Whether this is `sealed-v1`.
    pub const fn is_sealed(self) -> bool {
        matches!(self, GameAlgorithm::SealedV1)
    }

    /// Every name, in order: the engine's, then `sealed-v1`.
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        names.push(SEALED_V1);
        names
    }
}

impl fmt::Display for GameAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"a", "b", "c" or "d"`.
fn quoted_names() -> String {
    let names: Vec<String> = GameAlgorithm::names()
        .iter()
        .map(|n| format!("{n:?}"))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

impl Serialize for GameAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GameAlgorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<GameAlgorithm, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = GameAlgorithm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an algorithm name: {}", quoted_names())
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<GameAlgorithm, E> {
                GameAlgorithm::parse(name).ok_or_else(|| {
                    E::custom(format!(
                        "unknown algorithm {name:?}: expected {}",
                        quoted_names()
                    ))
                })
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// One revealed round: its key, 64 lowercase hex digits (`H(key)` is the previous round's key,
/// the commitment for round 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RoundKey {
    /// The round, from 1.
    #[cfg_attr(test, ts(type = "number"))]
    pub round: u64,
    /// Its key.
    pub key: String,
}

/// `GET /game/{id}/rounds?from=R`: the revealed keys from round `R` on (at most
/// [`MAX_ROUNDS_PAGE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RoundsView {
    /// The game.
    pub game_id: GameId,
    /// The chain's head, as in the game's view.
    pub commitment: String,
    /// The first round asked for.
    #[cfg_attr(test, ts(type = "number"))]
    pub from: u64,
    /// The public keys of rounds `from ..`, in order: at most [`MAX_ROUNDS_PAGE`] (a full page
    /// may have more after it: ask again from the round after its last). A full page, and any
    /// page of an ended game, never changes.
    pub rounds: Vec<RoundKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_every_one() {
        for name in GameAlgorithm::names() {
            let parsed: GameAlgorithm = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(parsed.as_str(), name);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("{name:?}"));
        }
        assert!(GameAlgorithm::SealedV1.is_sealed());
        assert_eq!(GameAlgorithm::SealedV1.engine(), None);
        assert_eq!(
            GameAlgorithm::default(),
            GameAlgorithm::Engine(Algorithm::Mix32V1)
        );
        let e = serde_json::from_str::<GameAlgorithm>("\"sealed-v2\"").unwrap_err();
        assert!(
            e.to_string().contains(
                r#"unknown algorithm "sealed-v2": expected "mix32-v1", "lcg32", "interval-v0" or "sealed-v1""#
            ),
            "{e}"
        );
    }
}
