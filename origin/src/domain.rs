//! Domain types: validated identifiers and the game record.
//!
//! Every value from outside goes through a `parse` constructor, so handlers and the store only
//! ever see valid data.

use serde::Serialize;
use shared_engine::{Algorithm, Params};
use uuid::Uuid;

/// Longest tick a game may ask for (one minute).
pub const MAX_TICK_MS: u32 = 60_000;
/// Rarest break odds a game may ask for.
pub const MAX_BREAK_EVERY: u32 = 1_000_000;
/// Largest `metadata` object, serialized.
pub const MAX_METADATA_BYTES: usize = 4_096;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, as the client named it.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A region name: lowercase letters, digits and '-', 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Region(String);

impl Region {
    /// Validates a region name.
    pub fn parse(value: &str) -> Result<Region, String> {
        let ok = (1..=32).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Region(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} must be 1-32 lowercase letters, digits or '-'"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user id: 1 to 64 characters of letters, digits and `._:@-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UserId(String);

impl UserId {
    /// Validates a user id given in field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<UserId, Invalid> {
        if value.is_empty() || value.len() > 64 {
            return Err(Invalid::new(field, "must be 1 to 64 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@-".contains(c))
        {
            return Err(Invalid::new(
                field,
                "may contain only letters, digits and . _ : @ -",
            ));
        }
        Ok(UserId(value.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A game id: a UUID (v4 when this service makes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GameId(pub Uuid);

impl GameId {
    /// A fresh random id.
    pub fn random() -> GameId {
        GameId(Uuid::new_v4())
    }

    /// Parses the canonical hyphenated form (also accepts `sess_`-prefixed ids of the v1 API).
    pub fn parse(value: &str) -> Result<GameId, Invalid> {
        let bare = value.strip_prefix("sess_").unwrap_or(value);
        if bare.len() != 36 {
            return Err(Invalid::new(
                "gameId",
                "must be a UUID like 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b",
            ));
        }
        Uuid::try_parse(bare).map(GameId).map_err(|_| {
            Invalid::new(
                "gameId",
                "must be a UUID like 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b",
            )
        })
    }
}

impl std::fmt::Display for GameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An `Idempotency-Key` header value: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a header value.
    pub fn parse(value: &str) -> Result<IdempotencyKey, Invalid> {
        if (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(Invalid::new(
                "Idempotency-Key",
                "must be 1 to 128 visible ASCII characters",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a game is still running for its player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GameStatus {
    /// Started, not exited.
    Active,
    /// Exited by its player; its timeline is frozen at `exited_at_ms`.
    Exited,
}

impl GameStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            GameStatus::Active => "active",
            GameStatus::Exited => "exited",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Option<GameStatus> {
        match value {
            "active" => Some(GameStatus::Active),
            "exited" => Some(GameStatus::Exited),
            _ => None,
        }
    }
}

/// Everything stored about one game.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// Its id.
    pub id: GameId,
    /// The player who started it.
    pub user_id: UserId,
    /// The region whose origin created it.
    pub region: Region,
    /// Engine seed.
    pub seed: u32,
    /// Unix ms of step 0.
    pub start_at_ms: i64,
    /// Milliseconds per step.
    pub tick_ms: u32,
    /// Break odds.
    pub break_every: u32,
    /// Break algorithm.
    pub algorithm: Algorithm,
    /// Active or exited.
    pub status: GameStatus,
    /// Unix ms of creation.
    pub created_at_ms: i64,
    /// Unix ms of the exit, once exited.
    pub exited_at_ms: Option<i64>,
    /// Client-supplied JSON object, if any.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Game {
    /// The engine parameters of this game (with its end, once exited).
    pub fn params(&self) -> Params {
        Params::new(
            self.seed,
            self.start_at_ms,
            self.tick_ms,
            self.break_every,
            self.algorithm,
        )
        .expect("stored games hold validated parameters")
        .with_end(self.exited_at_ms)
    }
}

/// The validated body of a start request.
#[derive(Debug, Clone)]
pub struct NewGame {
    /// The player.
    pub user_id: UserId,
    /// Chosen algorithm, default `mix32-v1`.
    pub algorithm: Algorithm,
    /// Chosen tick, else the region default.
    pub tick_ms: Option<u32>,
    /// Chosen odds, else the region default.
    pub break_every: Option<u32>,
    /// Free-form JSON object (at most 4 KiB).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl NewGame {
    /// Validates the optional parts of a start request.
    pub fn parse(
        user_id: UserId,
        algorithm: Option<&str>,
        tick_ms: Option<u64>,
        break_every: Option<u64>,
        metadata: Option<serde_json::Value>,
        field_names: [&'static str; 4],
    ) -> Result<NewGame, Invalid> {
        let [algorithm_field, tick_field, break_field, metadata_field] = field_names;
        let algorithm = match algorithm {
            None => Algorithm::default(),
            Some(name) => Algorithm::parse(name)
                .map_err(|_| Invalid::new(algorithm_field, "must be \"mix32-v1\" or \"lcg32\""))?,
        };
        let tick_ms = tick_ms
            .map(|t| match u32::try_from(t) {
                Ok(t @ 1..=MAX_TICK_MS) => Ok(t),
                _ => Err(Invalid::new(
                    tick_field,
                    format!("must be 1..={MAX_TICK_MS}"),
                )),
            })
            .transpose()?;
        let break_every = break_every
            .map(|b| match u32::try_from(b) {
                Ok(b @ 2..=MAX_BREAK_EVERY) => Ok(b),
                _ => Err(Invalid::new(
                    break_field,
                    format!("must be 2..={MAX_BREAK_EVERY}"),
                )),
            })
            .transpose()?;
        let metadata = match metadata {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(map)) => {
                let size = serde_json::to_vec(&map)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_METADATA_BYTES {
                    return Err(Invalid::new(
                        metadata_field,
                        format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
                    ));
                }
                Some(map)
            }
            Some(_) => return Err(Invalid::new(metadata_field, "must be a JSON object")),
        };
        Ok(NewGame {
            user_id,
            algorithm,
            tick_ms,
            break_every,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(UserId::parse("userId", "alice_01@example.com").is_ok());
        assert_eq!(UserId::parse("userId", "").unwrap_err().field, "userId");
        assert!(UserId::parse("userId", &"x".repeat(65)).is_err());
        assert!(UserId::parse("userId", "bob smith").is_err());
        assert!(UserId::parse("userId", "robert'); DROP TABLE").is_err());
    }

    #[test]
    fn game_ids() {
        let id = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";
        assert_eq!(GameId::parse(id).unwrap().to_string(), id);
        assert_eq!(
            GameId::parse(&format!("sess_{id}")).unwrap().to_string(),
            id
        );
        assert!(GameId::parse("3f2b8c1e9d4a4f6b8e2a1c5d7e9f0a3b").is_err());
        assert!(GameId::parse("nope").is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("a7c1-retry").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }

    #[test]
    fn new_game_validation_names_fields() {
        let user = UserId::parse("userId", "u").unwrap();
        let names = ["algorithm", "tickMs", "breakEvery", "metadata"];
        let parse = |a, t, b, m| NewGame::parse(user.clone(), a, t, b, m, names);
        assert_eq!(
            parse(Some("md5"), None, None, None).unwrap_err().field,
            "algorithm"
        );
        assert_eq!(
            parse(None, Some(0), None, None).unwrap_err().field,
            "tickMs"
        );
        assert_eq!(
            parse(None, Some(60_001), None, None).unwrap_err().field,
            "tickMs"
        );
        assert_eq!(
            parse(None, None, Some(1), None).unwrap_err().field,
            "breakEvery"
        );
        assert_eq!(
            parse(None, None, None, Some(serde_json::json!([1])))
                .unwrap_err()
                .field,
            "metadata"
        );
        let big = serde_json::json!({"k": "x".repeat(5_000)});
        assert_eq!(
            parse(None, None, None, Some(big)).unwrap_err().field,
            "metadata"
        );
        let ok = parse(
            Some("lcg32"),
            Some(16),
            Some(7),
            Some(serde_json::json!({"mode": "duel"})),
        )
        .unwrap();
        assert_eq!(
            (ok.algorithm, ok.tick_ms, ok.break_every),
            (Algorithm::Lcg32, Some(16), Some(7))
        );
    }
}
