//! The `GAME_EVENTS` JetStream stream: its name, subjects and limits, created (or brought up to
//! date) by every publisher and consumer, so no separate provisioning step exists.

use std::time::Duration;

use api::EventType;
use async_nats::jetstream::{self, stream};

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

/// The subjects of the stream: every type, every region (`game.started.*`, `game.exited.*`).
pub fn subjects() -> Vec<String> {
    EventType::ALL
        .iter()
        .map(|t| format!("{}.*", t.as_str()))
        .collect()
}

/// The stream's configuration.
pub fn config() -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        description: Some("seedsync game.started / game.exited events".to_owned()),
        subjects: subjects(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        // One replica on a single local server; a production cluster runs 3.
        num_replicas: 1,
        ..Default::default()
    }
}

/// Creates the stream, or updates it to [`config`]; idempotent and safe to run concurrently
/// from every origin (the server accepts an identical create).
pub async fn ensure(js: &jetstream::Context) -> Result<(), EventsError> {
    js.create_or_update_stream(config())
        .await
        .map(|_| ())
        .map_err(|e| EventsError::Stream {
            stream: STREAM,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_cover_every_event_type_and_region() {
        assert_eq!(subjects(), ["game.started.*", "game.exited.*"]);
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
        let c = config();
        assert_eq!(c.duplicate_window, DUPLICATE_WINDOW);
        assert_eq!(c.storage, stream::StorageType::File);
    }
}
