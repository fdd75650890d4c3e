//! The leaderboard consumer: a JetStream durable pull consumer (`LEADERBOARD_CONSUMER` names
//! it) of the `GAME_EVENTS` stream, run in the origin process when configured.
//!
//! It fetches up to [`BATCH`] events at a time, applies the `game.exited` ones to the
//! [`LeaderboardStore`] concurrently, and acknowledges each message only after its writes
//! succeeded. The broker keeps the consumer's position (the acknowledged messages) durably, so
//! after a crash of the origin, or a restart of the broker, the consumer resumes where it was,
//! and what was written but not acknowledged is delivered again, without effect (see
//! [`super`]). Any number of origins may run the same consumer name: the broker shares the
//! messages between them.

use std::sync::Arc;
use std::time::Duration;

use api::GameEvent;
use events::async_nats::jetstream::{
    self, AckKind, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull,
};
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::{LeaderboardStore, lines_of};
use crate::metrics::Metrics;

/// Events fetched (and applied concurrently) at once.
pub const BATCH: usize = 64;

/// How long the broker waits for an acknowledgement before delivering a message again (a
/// consumer that died holding messages gets them back after this long).
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// How long one fetch waits for events.
const FETCH_EXPIRY: Duration = Duration::from_secs(1);

/// The consumer's settings (`LEADERBOARD_CONSUMER`, `LEADERBOARD_SUBJECT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardSettings {
    /// The durable consumer's name.
    pub consumer: String,
    /// The subjects it reads (`game.exited.*`, or one region's `game.exited.eu`).
    pub subject: String,
    /// The broker's redelivery delay for unacknowledged messages ([`ACK_WAIT`]; tests shorten
    /// it). Set when the consumer is created.
    pub ack_wait: Duration,
}

/// The default subject: every region's exits.
pub const DEFAULT_SUBJECT: &str = "game.exited.*";

/// Checks a consumer name as JetStream takes it: 1-64 of `A-Z a-z 0-9 - _`.
pub fn valid_consumer_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a subject: `game.exited.<region>` or `game.exited.*`.
pub fn valid_subject(subject: &str) -> bool {
    subject.strip_prefix("game.exited.").is_some_and(|region| {
        region == "*" || api::RegionName::parse(region).is_ok_and(|r| r.as_str() == region)
    })
}

/// A running consumer; aborted when dropped (what a crash does: unacknowledged events are
/// delivered again later).
#[derive(Debug)]
pub struct LeaderboardHandle {
    task: JoinHandle<()>,
}

impl LeaderboardHandle {
    /// Stops the consumer where it is.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for LeaderboardHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the consumer over `client` in a background task.
pub fn spawn(
    client: events::async_nats::Client,
    settings: LeaderboardSettings,
    store: Arc<dyn LeaderboardStore>,
    metrics: Arc<Metrics>,
) -> LeaderboardHandle {
    let consumer = Consumer {
        js: jetstream::new(client),
        settings,
        store,
        metrics,
    };
    LeaderboardHandle {
        task: tokio::spawn(consumer.run()),
    }
}

struct Consumer {
    js: jetstream::Context,
    settings: LeaderboardSettings,
    store: Arc<dyn LeaderboardStore>,
    metrics: Arc<Metrics>,
}

impl Consumer {
    async fn run(self) {
        let mut failures = 0u32;
        loop {
            match self.consume().await {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, consumer = %self.settings.consumer,
                        "leaderboard consumer: retrying");
                }
            }
            let pause = Duration::from_millis(100 * (1u64 << failures.min(5)));
            tokio::time::sleep(pause).await;
        }
    }

    /// Opens the durable consumer and applies batches until something fails.
    async fn consume(&self) -> Result<(), String> {
        events::stream::ensure(&self.js, None)
            .await
            .map_err(|e| e.to_string())?;
        let stream = self
            .js
            .get_stream(events::stream::STREAM)
            .await
            .map_err(|e| e.to_string())?;
        let name = self.settings.consumer.clone();
        let consumer: events::async_nats::jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some("seedsync leaderboard (origin)".into()),
                    filter_subject: self.settings.subject.clone(),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_ack_pending: 1_024,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(consumer = %name, subject = %self.settings.subject, "leaderboard consumer running");
        loop {
            let mut batch = consumer
                .batch()
                .max_messages(BATCH)
                .expires(FETCH_EXPIRY)
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|e| e.to_string())?);
            }
            if !messages.is_empty() {
                self.apply(messages).await;
            }
        }
    }

    /// Applies a batch concurrently; acknowledges each message whose writes succeeded.
    async fn apply(&self, messages: Vec<jetstream::Message>) {
        let outcomes = futures::future::join_all(messages.iter().map(|message| async move {
            if message.info().is_ok_and(|info| info.delivered > 1) {
                self.metrics.leaderboard_redelivered.inc();
            }
            let event = match GameEvent::from_json(&message.payload) {
                Ok(event) => event,
                Err(error) => {
                    // Never applicable: terminate it rather than redeliver it forever.
                    tracing::error!(%error, subject = %message.subject, "leaderboard: not a game event");
                    return Some(AckKind::Term);
                }
            };
            for line in lines_of(&event) {
                if let Err(error) = self.store.apply(&line).await {
                    tracing::warn!(%error, event_id = %event.event_id, "leaderboard: cannot apply yet");
                    self.metrics.leaderboard_failures.inc();
                    return Some(AckKind::Nak(Some(Duration::from_secs(1))));
                }
            }
            None
        }))
        .await;
        // Only now, after the durable writes: acknowledge.
        let acks = messages
            .iter()
            .zip(outcomes)
            .map(|(message, outcome)| async move {
                let applied = outcome.is_none();
                let result = match outcome {
                    None => message.ack().await,
                    Some(kind) => message.ack_with(kind).await,
                };
                match result {
                    // A lost acknowledgement means a redelivery, applied without effect.
                    Err(error) => tracing::warn!(%error, "leaderboard: acknowledgement failed"),
                    Ok(()) if applied => self.metrics.leaderboard_applied.inc(),
                    Ok(()) => {}
                }
            });
        futures::future::join_all(acks).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subjects_are_checked() {
        assert!(valid_consumer_name("LEADERBOARD") && valid_consumer_name("lb-eu_1"));
        for bad in ["", "a.b", "a b", "a*", &"x".repeat(65)] {
            assert!(!valid_consumer_name(bad), "{bad:?}");
        }
        assert!(valid_subject(DEFAULT_SUBJECT) && valid_subject("game.exited.eu"));
        for bad in [
            "game.started.*",
            "game.exited.",
            "game.exited.e u",
            "game.exited.>",
            "x",
        ] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}
