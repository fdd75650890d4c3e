//! The `GAME_EVENTS` JetStream stream: its name, subjects and limits, created (or brought up to
//! date) by every publisher and consumer, so no separate provisioning step exists.

use std::time::Duration;

use api::EventType;
use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind, stream};

use crate::EventsError;

/// The stream's name.
pub const STREAM: &str = "GAME_EVENTS";

/// How long JetStream remembers a `Nats-Msg-Id`: a re-publication within this window is
/// acknowledged as a duplicate and not stored again. Longer than any realistic outage of the
/// broker plus relay backoff; consumers dedupe what arrives later ([`crate::Dedupe`]).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// How long events are kept: consumers that fall behind by less catch up without loss.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Bound on the stream's disk use; the oldest events go first. JetStream reserves it when the
/// stream is created, so it must fit the server's storage (about 2 million events).
pub const MAX_BYTES: i64 = 1024 * 1024 * 1024;

/// The subjects of the stream: every type, every region (`game.started.*`, `game.exited.*`,
/// `game.joined.*`, `game.ended.*`, `game.break.*`); a stream created with fewer is updated.
pub fn subjects() -> Vec<String> {
    EventType::ALL
        .iter()
        .map(|t| format!("{}.*", t.as_str()))
        .collect()
}

/// JetStream's `sync_interval` this project ships: the broker fsyncs its stream files every
/// second, and the origins' relays keep an acknowledged event's outbox row until that fsync has
/// surely happened (see `origin::outbox`), instead of paying an fsync per acknowledgement.
pub const DEFAULT_SYNC: &str = "1s";

/// Parses a JetStream `sync_interval` as `nats-server` takes it here: `always` (an fsync
/// before every acknowledgement: zero) or a whole number of `ms`, `s`, `m` or `h`.
///
/// ```
/// use std::time::Duration;
/// use events::stream::parse_sync_interval;
/// assert_eq!(parse_sync_interval("always"), Ok(Duration::ZERO));
/// assert_eq!(parse_sync_interval("1s"), Ok(Duration::from_secs(1)));
/// assert_eq!(parse_sync_interval("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_sync_interval("soon").is_err());
/// ```
pub fn parse_sync_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "always" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not `always` or a duration like 1s, 500ms or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        "h" => Duration::from_secs(value.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if duration.is_zero() || duration > Duration::from_secs(24 * 3600) {
        return Err(format!("{text:?}: must be `always` or between 1ms and 24h"));
    }
    Ok(duration)
}

/// The most replicas JetStream allows a stream.
pub const MAX_REPLICAS: usize = 5;

/// The stream's configuration with `replicas` copies (1 on a single server; 3 on a production
/// cluster, so an acknowledged event survives the loss of a node).
pub fn config(replicas: usize) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        description: Some("seedsync game events (see api::events)".to_owned()),
        subjects: subjects(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Creates the stream, or updates it to [`config`]; idempotent and safe to run concurrently
/// from every origin (the server accepts an identical create). `replicas: None` keeps the
/// replica count the stream has (1 for a new one), so a consumer such as `tail` never undoes
/// what an origin or an operator set.
pub async fn ensure(js: &jetstream::Context, replicas: Option<usize>) -> Result<(), EventsError> {
    let failed = |message: String| EventsError::Stream {
        stream: STREAM,
        message,
    };
    let replicas = match replicas {
        Some(replicas) => replicas,
        None => match js.get_stream(STREAM).await {
            Ok(existing) => existing.cached_info().config.num_replicas,
            Err(e) if is_stream_not_found(e.kind()) => 1,
            Err(e) => return Err(failed(e.to_string())),
        },
    };
    js.create_or_update_stream(config(replicas))
        .await
        .map(|_| ())
        .map_err(|e| failed(e.to_string()))
}

pub(crate) fn is_stream_not_found(kind: GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_intervals_parse_like_the_server_config() {
        assert_eq!(
            parse_sync_interval(DEFAULT_SYNC),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(parse_sync_interval(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_sync_interval("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "0s", "1", "1d", "-1s", "1.5s", "25h", "Always"] {
            assert!(parse_sync_interval(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_cover_every_event_type_and_region() {
        assert_eq!(
            subjects(),
            [
                "game.started.*",
                "game.exited.*",
                "game.joined.*",
                "game.ended.*",
                "game.break.*"
            ]
        );
        let region = api::RegionName::parse("asia").unwrap();
        for kind in EventType::ALL {
            let subject = kind.subject(&region);
            assert!(
                subjects()
                    .iter()
                    .any(|s| s.strip_suffix('*').is_some_and(|p| subject.starts_with(p))),
                "{subject}"
            );
        }
        let c = config(3);
        assert_eq!(c.num_replicas, 3);
        assert_eq!(c.duplicate_window, DUPLICATE_WINDOW);
        assert_eq!(c.storage, stream::StorageType::File);
    }
}
