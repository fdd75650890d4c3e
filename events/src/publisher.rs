//! Publishing game events with JetStream's per-message dedupe.
//!
//! Each event goes out with the header `Nats-Msg-Id: <eventId>`, and a publication counts only
//! once JetStream acknowledged it. Because event ids are deterministic, publishing the same
//! event again (a retry after a lost ack, a relay that crashed before clearing its outbox row,
//! a row released after a reconnect or a leader change) is acknowledged as a duplicate within
//! [`crate::stream::DUPLICATE_WINDOW`] and stored once. The duplicate window is part of the
//! stream's replicated state, so a new leader drops the repeats the old one would have.
//!
//! What an acknowledgement proves depends on the stream's replicas:
//! - R1 (one server): the server has the event in its store, written to the OS but fsynced
//!   only at its next `sync_interval` tick. A crash of the process loses nothing; a power cut
//!   of its host within the interval may.
//! - R3 (a three-node cluster): the stream's leader has committed the event to its Raft log on
//!   a quorum (two of three servers), again in memory and page cache until each one's next
//!   fsync. It survives SIGKILL or power loss of any one server and any leader change (Raft
//!   elects only a server holding every committed entry); it can be lost only if a quorum
//!   lose power within the sync interval.
//!
//! [`Publisher::leadership`] reads who leads the stream, so the relay (`origin::outbox::relay`)
//! can tell when the leadership that acknowledged an event has lasted past its fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api::GameEvent;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::{EventsError, stream};

/// The outcome of one acknowledged publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The event's sequence number in the stream.
    pub sequence: u64,
    /// Whether the broker already had this event id (a re-publication, not stored again).
    pub duplicate: bool,
}

/// Who leads the stream's Raft group, as the stream's info reports it. A leader change, and
/// the same server elected again, give a different value (`since` moves); two equal values
/// read at two moments mean one unbroken leadership between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's server name.
    pub leader: String,
    /// When it became the leader (as the leader's clock says).
    pub since: Option<time::OffsetDateTime>,
}

/// Publishes game events to the `GAME_EVENTS` stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
    /// Whether the stream is known to exist; cleared when the broker says it does not.
    stream_ready: Arc<AtomicBool>,
    /// The stream's replica count to set, or `None` to keep the stream's own.
    replicas: Option<usize>,
}

impl Publisher {
    /// A publisher over a connected (or connecting) client; `ack_timeout` bounds each
    /// publication, including the wait for the acknowledgement.
    pub fn new(client: async_nats::Client, ack_timeout: Duration) -> Publisher {
        let js = jetstream::ContextBuilder::new()
            .timeout(ack_timeout)
            // Many publications may be in flight (the relay pipelines a batch); wait for a slot
            // instead of failing when all are taken.
            .backpressure_on_inflight(true)
            .build(client);
        Publisher {
            js,
            stream_ready: Arc::new(AtomicBool::new(false)),
            replicas: None,
        }
    }

    /// Makes the stream this publisher creates or updates keep `replicas` copies of each event.
    pub fn with_replicas(mut self, replicas: usize) -> Publisher {
        self.replicas = Some(replicas);
        self
    }

    /// The JetStream context (for stream and consumer management).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Whether the client is connected to a server now (publishing while it is not would only
    /// wait for the acknowledgement timeout).
    pub fn is_connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    /// Which connection to the broker this is: 1 for the first, +1 for every reconnect. An
    /// acknowledgement counts only while the connection that carried it lasts.
    pub fn connection(&self) -> u64 {
        self.js
            .client()
            .statistics()
            .connects
            .load(Ordering::Relaxed)
    }

    /// One request and reply with the broker (JetStream's account info), bounded by the
    /// acknowledgement timeout: proof that the server is up at the moment it answers.
    pub async fn round_trip(&self) -> Result<(), EventsError> {
        self.js
            .query_account()
            .await
            .map(|_| ())
            .map_err(|e| EventsError::Stream {
                stream: stream::STREAM,
                message: format!("account info: {e}"),
            })
    }

    /// Who leads the stream now (one stream-info request, answered by its leader, bounded by
    /// the acknowledgement timeout; the stream is created first if this publisher has not yet);
    /// `None` for a stream that is not clustered (one server: no
    /// Raft group). An error means no answer.
    pub async fn leadership(&self) -> Result<Option<Leadership>, EventsError> {
        if !self.stream_ready.load(Ordering::Relaxed) {
            // What the first publication would do anyway; a missing stream has no leader.
            self.ensure_stream().await?;
        }
        match self.js.get_stream(stream::STREAM).await {
            Ok(found) => Ok(leadership_of(found.cached_info())),
            Err(e) => {
                if stream::is_stream_not_found(e.kind()) {
                    self.stream_ready.store(false, Ordering::Relaxed);
                }
                Err(EventsError::Stream {
                    stream: stream::STREAM,
                    message: format!("stream info: {e}"),
                })
            }
        }
    }

    /// Creates or updates the stream now (otherwise done before the first publication).
    pub async fn ensure_stream(&self) -> Result<(), EventsError> {
        stream::ensure(&self.js, self.replicas).await?;
        self.stream_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes `event` and waits for JetStream's acknowledgement.
    pub async fn publish(&self, event: &GameEvent) -> Result<Published, EventsError> {
        if !self.stream_ready.load(Ordering::Relaxed) {
            self.ensure_stream().await?;
        }
        let subject = event.subject();
        let failed = |message: String| EventsError::Publish {
            subject: subject.clone(),
            message,
        };
        let message = PublishMessage::build()
            .message_id(event.event_id.to_string())
            .payload(Bytes::from(event.to_json()));
        let ack = match self.js.send_publish(subject.clone(), message).await {
            Ok(future) => future.await,
            Err(e) => return Err(failed(e.to_string())),
        };
        match ack {
            Ok(ack) => Ok(Published {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(e) => {
                if e.kind() == jetstream::context::PublishErrorKind::StreamNotFound {
                    // Deleted under us (e.g. the broker's store was wiped): recreate next time.
                    self.stream_ready.store(false, Ordering::Relaxed);
                }
                Err(failed(e.to_string()))
            }
        }
    }
}

/// The leadership a stream's info reports (`None` without a Raft leader: not clustered).
pub fn leadership_of(info: &jetstream::stream::Info) -> Option<Leadership> {
    let cluster = info.cluster.as_ref()?;
    let leader = cluster.leader.clone().filter(|l| !l.is_empty())?;
    if info.config.num_replicas <= 1 && cluster.leader_since.is_none() {
        return None;
    }
    Some(Leadership {
        leader,
        since: cluster.leader_since,
    })
}
