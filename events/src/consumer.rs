//! Reading game events from the stream, deduped by event id.
//!
//! A [`Consumer`] is an ephemeral, ordered JetStream consumer (no acks, no server-side state to
//! clean up): right for `tail`, dashboards and tests. It follows the stream across broker
//! restarts, resuming after the last sequence it delivered. Every event comes with whether it is
//! the first delivery of its id ([`Received::first_time`]); applying only those gives each event
//! exactly one effect although delivery is at least once. A service that must not miss events
//! while it is itself down would use a durable consumer of the same stream instead.

use std::time::Duration;

use api::GameEvent;
use async_nats::connection::State;
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use kernel::clock::now_ms;

use crate::{Dedupe, EventsError, stream};

/// How often an idle consumer checks the connection.
const STATE_CHECK: Duration = Duration::from_millis(250);

/// How long one pull request waits for events at most.
const PULL_EXPIRY: Duration = Duration::from_secs(3);

/// Where in the stream a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest event still stored.
    All,
    /// Only events stored after the consumer was created.
    New,
    /// Events stored within this long before now.
    Since(Duration),
    /// From this stream sequence on.
    Sequence(u64),
}

impl StartFrom {
    fn policy(self) -> DeliverPolicy {
        match self {
            StartFrom::All => DeliverPolicy::All,
            StartFrom::New => DeliverPolicy::New,
            StartFrom::Since(ago) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::now_utc() - ago,
            },
            StartFrom::Sequence(start_sequence) => DeliverPolicy::ByStartSequence {
                start_sequence: start_sequence.max(1),
            },
        }
    }
}

/// One delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The event.
    pub event: GameEvent,
    /// Its sequence number in the stream.
    pub sequence: u64,
    /// When the broker stored it, Unix ms.
    pub stored_at_ms: i64,
    /// When this consumer received it, Unix ms.
    pub received_at_ms: i64,
    /// `false` if this event id was delivered before (an at-least-once repeat to skip).
    pub first_time: bool,
}

impl Received {
    /// Milliseconds from the event's commit (`occurredAt`) to its receipt here.
    pub fn lag_ms(&self) -> i64 {
        self.received_at_ms - self.event.occurred_at
    }
}

/// An ordered consumer of the game event stream with dedupe by event id.
pub struct Consumer {
    client: async_nats::Client,
    /// The client's connection count when the consumer was opened.
    opened_at_connect: u64,
    js: jetstream::Context,
    filters: Vec<String>,
    messages: Option<pull::Ordered>,
    start: StartFrom,
    /// The last stream sequence delivered, to resume from after a failure.
    last_sequence: u64,
    dedupe: Dedupe,
    invalid: u64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("filters", &self.filters)
            .field("start", &self.start)
            .field("last_sequence", &self.last_sequence)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer of the events on `filters` (every event if empty; subjects like
    /// `game.started.*` or `game.*.eu`) from `start` on. Creates the stream if missing.
    pub async fn new(
        client: async_nats::Client,
        start: StartFrom,
        filters: Vec<String>,
    ) -> Result<Consumer, EventsError> {
        let js = jetstream::new(client.clone());
        stream::ensure(&js, None).await?;
        let mut consumer = Consumer {
            client,
            opened_at_connect: 0,
            js,
            filters,
            messages: None,
            start,
            last_sequence: 0,
            dedupe: Dedupe::default(),
            invalid: 0,
        };
        consumer.open().await?;
        Ok(consumer)
    }

    /// Replaces the dedupe (e.g. a smaller capacity).
    pub fn with_dedupe(mut self, dedupe: Dedupe) -> Consumer {
        self.dedupe = dedupe;
        self
    }

    async fn open(&mut self) -> Result<(), EventsError> {
        let failed = |e: &dyn std::fmt::Display| EventsError::Consume(e.to_string());
        let start = if self.last_sequence > 0 {
            StartFrom::Sequence(self.last_sequence + 1)
        } else {
            self.start
        };
        let mut config = pull::OrderedConfig {
            deliver_policy: start.policy(),
            // Short pulls: after a broker restart (which forgets ephemeral consumers) the next
            // pull fails within this and the consumer is recreated where it left off, instead
            // of waiting out the default 30 s pull.
            max_expires: PULL_EXPIRY,
            ..Default::default()
        };
        match self.filters.as_slice() {
            [] => {}
            [one] => config.filter_subject = one.clone(),
            many => config.filter_subjects = many.to_vec(),
        }
        let stream = self
            .js
            .get_stream(stream::STREAM)
            .await
            .map_err(|e| failed(&e))?;
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| failed(&e))?;
        self.messages = Some(consumer.messages().await.map_err(|e| failed(&e))?);
        self.opened_at_connect = self.connects();
        Ok(())
    }

    fn connects(&self) -> u64 {
        self.client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next valid event (duplicates included, marked). An `Err` is a transient failure
    /// (broker down, consumer lost): call again to resume after the last delivered sequence.
    /// Messages that are not valid events are skipped and counted ([`Consumer::invalid`]).
    pub async fn next(&mut self) -> Result<Received, EventsError> {
        loop {
            if self.messages.is_none() {
                self.open().await?;
            }
            let Some(messages) = self.messages.as_mut() else {
                continue;
            };
            let polled = tokio::time::timeout(STATE_CHECK, messages.next()).await;
            // A broker restart forgets ephemeral consumers; the client library notices only
            // after several retries (~15 s). Reopen at once when the client has reconnected.
            if polled.is_err()
                && self.client.connection_state() == State::Connected
                && self.connects() > self.opened_at_connect
            {
                self.messages = None;
                return Err(EventsError::Consume(
                    "reconnected to the broker; resuming".into(),
                ));
            }
            let Ok(polled) = polled else {
                continue;
            };
            let message = match polled {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    self.messages = None;
                    return Err(EventsError::Consume(e.to_string()));
                }
                None => {
                    self.messages = None;
                    return Err(EventsError::Consume("the consumer ended".into()));
                }
            };
            let received_at_ms = now_ms();
            let (sequence, stored_at_ms) = match message.info() {
                Ok(info) => (
                    info.stream_sequence,
                    i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
                        .unwrap_or_default(),
                ),
                Err(_) => (self.last_sequence + 1, received_at_ms),
            };
            self.last_sequence = sequence;
            match GameEvent::from_json(&message.payload) {
                Ok(event) => {
                    let first_time = self.dedupe.first_time(event.event_id);
                    return Ok(Received {
                        event,
                        sequence,
                        stored_at_ms,
                        received_at_ms,
                        first_time,
                    });
                }
                Err(error) => {
                    self.invalid += 1;
                    tracing::warn!(sequence, %error, subject = %message.subject, "skipping a message that is not a game event");
                }
            }
        }
    }

    /// The dedupe state (duplicates seen so far).
    pub fn dedupe(&self) -> &Dedupe {
        &self.dedupe
    }

    /// Messages skipped because they were not valid game events.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }
}
