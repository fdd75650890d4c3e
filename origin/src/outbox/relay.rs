//! The relay: a background task of each origin that publishes its region's pending events.
//!
//! One scan pass reads every partition of the region from its floor, decides for each row whether
//! its event is committed (publish), not yet (wait) or never will be (drop, see the module docs
//! of [`crate::outbox`]), publishes the committed ones concurrently, waits for JetStream's
//! acknowledgements, and only then deletes their rows. A crash at any point leaves rows that
//! the next pass (of this or a restarted origin) publishes again under the same event ids.
//!
//! Two paths publish, both deleting a row only once JetStream's acknowledgement of its event is
//! known to be on the broker's disk (see "Held rows" below):
//! - the fast path: a request of this origin that committed an event hands it over with its row
//!   ([`super::Committed`]); the relay gathers them for a few milliseconds and publishes them
//!   without reading anything back (the request knows what it committed);
//! - the scan: every second, each partition is read for rows older than
//!   [`RelaySettings::fresh`], which covers whatever the fast path missed (a crash, a restart,
//!   a failed publication, another process of the region), deciding from the stored state.
//!
//! While the broker (or Cassandra) fails, scans back off exponentially with jitter up to
//! [`RelaySettings::max_backoff`]; the request path is never involved.
//!
//! Held rows: an acknowledgement is not yet an fsync. JetStream acknowledges from memory and
//! fsyncs every `sync_interval` (1 s as this project ships it); an fsync per acknowledgement
//! (`sync_interval: always`) halves start throughput when the broker shares a disk with
//! Cassandra. So the relay keeps each published row ([`Held`]) until the servers that stored
//! its event have surely lived past their next fsync, and [`settle`] holds the rule:
//!
//! - One server (R1): the acknowledgement means the server has the event in memory. The row is
//!   deleted once a request to the broker sent at least [`RelaySettings::durable_after`] (twice
//!   `sync_interval`) after the acknowledgement is answered on the same connection: the server
//!   that acknowledged lived past its next fsync.
//! - A cluster (R3, `NATS_STREAM_REPLICAS=3`): the acknowledgement means the stream's leader
//!   committed the event to its Raft log on a quorum (two of three servers), each holding it
//!   in memory until its own next fsync. That already survives the crash or power loss of any
//!   one server, and any leader change; it is lost only if a quorum lose power within the
//!   interval (a whole rack or zone at once). The connection proves little here (the client's
//!   server need not store the stream at all), so the relay reads who leads the stream
//!   ([`events::Publisher::leadership`]: leader and since when) and deletes a row only once a
//!   stream-info answer, requested at least `durable_after` after the acknowledgement, shows
//!   the same unbroken leadership it read before publishing: the leader that committed the
//!   event lived, leading, past its next fsync, and since a quorum that lost power would have
//!   cost it the leadership, the quorum did not lose the event either. A later loss needs
//!   the leader's disk itself, or two more failures. The same-connection rule applies too.
//! - What changes first releases the row instead: a reconnect (to the same or another node)
//!   or a new leadership (a leader change, or the same server elected again) makes the relay
//!   publish the event again under the same `Nats-Msg-Id`. If the event survived, the
//!   stream's duplicate window (replicated with the stream, so the new leader has it) drops
//!   the repeat and answers it as a duplicate; if it did not, it is stored now. Either way the
//!   row stays until the new acknowledgement is settled the same way.
//!
//! Holding costs a few seconds of rows in Cassandra and, after a reconnect or a leader change,
//! re-publications that the broker drops; a relay that deleted rows on the bare
//! acknowledgement would lose the events a quorum acknowledged and then lost in a power cut
//! (the events stage's cluster test simulates one and fails with such a relay: feature
//! `test-mutations`, `RELAY_DELETE_ON_ACK=1`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{EventId, EventType, GameEvent, GameStatus, RegionName, UnexitedSeat};
use events::Publisher;
use events::publisher::Leadership;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Committed, Outbox, OutboxStore, PendingEvent, SHARDS};
use crate::domain::Game;
use crate::max_age::MaxAge;
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::store::{ExitOutcome, GameStore, StoreError};
use kernel::clock::now_ms;

/// Rows checked against the game state at once.
const DECIDE_CONCURRENCY: usize = 64;
/// Publications awaiting their acknowledgement at once.
const PUBLISH_CONCURRENCY: usize = 256;
/// Committed events published in one round of the fast path.
const MAX_HINT_BATCH: usize = 4_096;
/// Held rows are settled (deleted or released) at most this often: a held row can only go once
/// its hold has passed, so settling after every fast-path round or scan would only repeat the
/// broker round trip and rebuild the map.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How the relay paces itself.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// A row whose event is still not committed after this long is checked at SERIAL and
    /// dropped if its event did not happen. Longer than any request (and its LWT retries) runs.
    pub grace: Duration,
    /// How far behind the clock a partition's scan floor trails: longer than a pending row's
    /// write can take to be acknowledged (Cassandra's timeout) plus clock skew between origins.
    pub safety: Duration,
    /// Pass interval when no request wakes the relay.
    pub idle_poll: Duration,
    /// After a committed event arrives, wait this long so one publication round carries many;
    /// also the pause between passes that work off a backlog.
    pub gather: Duration,
    /// Rows younger than this are left to the fast path (the request that queued them hands
    /// them over once committed); the scan takes them after.
    pub fresh: Duration,
    /// Rows read per partition and page.
    pub page: usize,
    /// Pages per partition and pass (a pass that reaches it goes on at once with the next).
    pub pages_per_pass: usize,
    /// Longest pause between passes while publishing fails.
    pub max_backoff: Duration,
    /// How long after its acknowledgement an event is surely on the broker's disk
    /// ([`durable_after`] of the broker's `sync_interval`; zero when the broker fsyncs before
    /// acknowledging). Its row is kept until then.
    pub durable_after: Duration,
}

/// How long after an acknowledgement the broker has surely fsynced the event, for a broker
/// whose JetStream `sync_interval` is `sync_interval` (zero: `always`). Twice the interval: the
/// broker's sync timer may run late on a loaded host.
pub fn durable_after(sync_interval: Duration) -> Duration {
    sync_interval * 2
}

impl RelaySettings {
    /// Settings for an origin whose requests time out after `request_timeout` and whose
    /// Cassandra requests after `cassandra_timeout`.
    pub fn new(request_timeout: Duration, cassandra_timeout: Duration) -> RelaySettings {
        RelaySettings {
            grace: request_timeout * 2 + Duration::from_secs(5),
            safety: cassandra_timeout + Duration::from_secs(5),
            idle_poll: Duration::from_secs(1),
            gather: Duration::from_millis(20),
            fresh: Duration::from_secs(2),
            page: 500,
            pages_per_pass: 20,
            max_backoff: Duration::from_secs(5),
            durable_after: durable_after(
                events::stream::parse_sync_interval(events::stream::DEFAULT_SYNC)
                    .unwrap_or_default(),
            ),
        }
    }

    /// The same pacing with the hold that a broker syncing every `sync` (its JetStream
    /// `sync_interval`, `NATS_SYNC`) asks for.
    pub fn with_broker_sync(mut self, sync: Duration) -> RelaySettings {
        self.durable_after = durable_after(sync);
        self
    }
}

/// A published event's row, kept until the broker surely has the event on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The outbox row.
    pub row: PendingEvent,
    /// When the acknowledgement arrived.
    pub acked_at: Instant,
    /// The broker connection that carried it ([`Publisher::connection`]; 0 when a reconnect
    /// happened while it was in flight, which makes the row be published again).
    pub connection: u64,
    /// The stream leadership the relay had last read before publishing (a count that moves
    /// with every new leadership read; see [`RoundTrip::leadership`]).
    pub leadership: u64,
}

/// What one request to the broker showed, for [`settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTrip {
    /// When the request was sent.
    pub began: Instant,
    /// The connection just before the request...
    pub connection_before: u64,
    /// ...and just after its answer (or failure).
    pub connection_after: u64,
    /// Whether the broker answered.
    pub answered: bool,
    /// The leadership the answer showed (the same count as [`Held::leadership`] if unbroken
    /// since; unchanged when there was no answer).
    pub leadership: u64,
}

/// Held rows sorted by [`settle`].
#[derive(Debug, Default, PartialEq)]
pub struct Settled {
    /// Surely on the broker's disk: delete the rows.
    pub delete: Vec<PendingEvent>,
    /// Acknowledged on a connection that is gone: publish again (the scan does, from the row).
    pub release: Vec<PendingEvent>,
    /// Not known yet.
    pub keep: Vec<Held>,
}

/// Sorts held rows after a round trip: a row whose acknowledgement came on a connection that
/// is no longer the current one, or under a stream leadership that has ended, is released; one
/// acknowledged at least `durable_after` before a request that the same, unchanged connection
/// answered, under the same leadership, is deleted; the rest wait.
pub fn settle(held: Vec<Held>, durable_after: Duration, trip: RoundTrip) -> Settled {
    let steady = trip.answered && trip.connection_before == trip.connection_after;
    let mut settled = Settled::default();
    for held in held {
        if held.connection != trip.connection_after || held.leadership != trip.leadership {
            settled.release.push(held.row);
        } else if steady && held.acked_at + durable_after <= trip.began {
            settled.delete.push(held.row);
        } else {
            settled.keep.push(held);
        }
    }
    settled
}

/// What to do with one pending row.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    /// The row's events are committed: publish these (together).
    Publish(Vec<GameEvent>),
    /// Not committed yet (the request may still be running).
    Wait,
    /// Never committed (a lost race, a request that died): forget the row.
    Drop,
}

/// Figures of one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events acknowledged by the broker.
    pub published: usize,
    /// Publications (or storage operations) that failed.
    pub failures: usize,
    /// Rows dropped as never committed.
    pub dropped: usize,
    /// Rows left pending (seen by this pass).
    pub pending: usize,
    /// A partition has rows this pass did not reach (it stopped at its page limit).
    pub more: bool,
    /// When the oldest row left pending was queued (Unix ms), among the rows read.
    pub oldest_pending_ms: Option<i64>,
    /// A partition could not be read: the oldest pending row may be one this pass missed.
    pub unread: bool,
}

impl Pass {
    /// Takes `queued_at_ms` into [`Pass::oldest_pending_ms`].
    fn saw_pending(&mut self, queued_at_ms: i64) {
        self.oldest_pending_ms = Some(
            self.oldest_pending_ms
                .map_or(queued_at_ms, |o| o.min(queued_at_ms)),
        );
    }
}

/// The oldest pending commit time to report after a pass: what it saw, or, when a partition
/// went unread, the older of that and what was reported before (an unread partition's rows
/// are still waiting; forgetting them would make the relay look caught up while it is stuck).
pub fn oldest_to_report(previous: Option<i64>, pass: &Pass) -> Option<i64> {
    match (pass.unread, previous, pass.oldest_pending_ms) {
        (true, Some(p), Some(n)) => Some(p.min(n)),
        (true, Some(p), None) => Some(p),
        (_, _, seen) => seen,
    }
}

/// The relay of one origin.
#[derive(Debug)]
pub struct Relay {
    games: Arc<dyn GameStore>,
    outbox: Outbox,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    settings: RelaySettings,
    floors: Vec<i64>,
    saved: Vec<i64>,
    last_save: Instant,
    /// Published rows waiting until their events are surely on the broker's disk.
    held: HashMap<EventId, Held>,
    last_flush: Instant,
    /// The stream leadership last read (`None` before the first answer; `Some(None)` for a
    /// stream that is not clustered) and its count, +1 whenever a read differs.
    leadership: Option<Option<Leadership>>,
    leadership_count: u64,
    /// The oldest pending commit time last reported to the metrics.
    oldest_reported: Option<i64>,
    /// `GAME_MAX_AGE`, by which expiry rows end games.
    max_age: MaxAge,
    /// The TTL an end at the maximum age rewrites the game's row with (`GAME_RETENTION`).
    finished_ttl_seconds: i32,
}

/// Controls a running relay.
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RelayHandle {
    /// Asks the relay to stop after one last pass, and waits for it (at most `deadline`, then
    /// it is aborted: what it did not publish stays pending for the next start).
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("the event relay did not stop in time; leaving the rest pending");
            abort.abort();
        }
    }

    /// Stops the relay at once, mid-pass (what a crash does; for tests).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The next committed event, or never without a channel.
async fn next_hint(hints: &mut Option<mpsc::Receiver<Committed>>) -> Option<Committed> {
    match hints {
        Some(hints) => hints.recv().await,
        None => std::future::pending().await,
    }
}

fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.min(10);
    let base = Duration::from_millis(100 * (1u64 << exp)).min(max);
    // Full jitter in [base/2, base]: relays of several origins do not retry in lockstep.
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    base / 2 + base / 2 * u32::from(byte[0]) / 255
}

impl Relay {
    /// A relay publishing `outbox`'s region with `publisher`, reading games from `games`.
    pub fn new(
        games: Arc<dyn GameStore>,
        outbox: Outbox,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        settings: RelaySettings,
    ) -> Relay {
        Relay {
            games,
            outbox,
            publisher,
            metrics,
            settings,
            floors: vec![0; SHARDS as usize],
            saved: vec![0; SHARDS as usize],
            last_save: Instant::now(),
            held: HashMap::new(),
            last_flush: Instant::now(),
            leadership: None,
            leadership_count: 0,
            oldest_reported: None,
            max_age: MaxAge::default(),
            finished_ttl_seconds: Retention::default().finished_ttl_seconds(),
        }
    }

    /// Ends games at `max_age` (the origin's `GAME_MAX_AGE`), rewriting their rows to live
    /// `retention` more, as an exit does.
    pub fn with_lifetime(mut self, max_age: MaxAge, retention: Retention) -> Relay {
        self.max_age = max_age;
        self.finished_ttl_seconds = retention.finished_ttl_seconds();
        self
    }

    /// Runs the relay in a background task.
    pub fn spawn(self) -> RelayHandle {
        let (stop, stopped) = watch::channel(false);
        RelayHandle {
            stop,
            task: tokio::spawn(self.run(stopped)),
        }
    }

    fn region(&self) -> &RegionName {
        self.outbox.region()
    }

    fn store(&self) -> &Arc<dyn OutboxStore> {
        self.outbox.store()
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut hints = self.outbox.take_hints();
        // The floors saved by earlier runs: where each partition's unpublished rows begin.
        let mut failures = 0u32;
        loop {
            match self.store().floors(self.region()).await {
                Ok(floors) => {
                    for (shard, floor) in floors {
                        if let Some(slot) = self.floors.get_mut(shard as usize) {
                            *slot = floor;
                        }
                    }
                    self.saved.clone_from(&self.floors);
                    break;
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "event relay cannot read its floors yet; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(backoff(failures, self.settings.max_backoff)) => {}
                    }
                }
            }
        }
        tracing::info!(region = %self.region(), "event relay running");
        failures = 0;
        let mut next_scan = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                // A clean shutdown publishes what it can: the hints, then one last pass.
                let mut batch = Vec::new();
                if let Some(hints) = hints.as_mut() {
                    while let Ok(hint) = hints.try_recv() {
                        batch.push(hint);
                    }
                }
                self.publish_committed(batch).await;
                let pass = self.pass().await;
                // Wait (at most the hold) until what was just published is surely on the
                // broker's disk, so a restart does not publish it again.
                let latest = self
                    .held
                    .values()
                    .map(|h| h.acked_at + self.settings.durable_after)
                    .max();
                if let Some(latest) = latest {
                    tokio::time::sleep_until(latest.into()).await;
                }
                self.flush_held(true).await;
                self.save_floors(true).await;
                tracing::info!(?pass, "event relay stopped");
                return;
            }
            tokio::select! {
                _ = stop.changed() => continue,
                Some(first) = next_hint(&mut hints) => {
                    // Gather what the next few milliseconds commit, then publish it together.
                    tokio::time::sleep(self.settings.gather).await;
                    let mut batch = vec![first];
                    if let Some(hints) = hints.as_mut() {
                        while batch.len() < MAX_HINT_BATCH {
                            match hints.try_recv() {
                                Ok(hint) => batch.push(hint),
                                Err(_) => break,
                            }
                        }
                    }
                    self.publish_committed(batch).await;
                    continue;
                }
                () = tokio::time::sleep_until(next_scan) => {}
            }
            let pass = self.pass().await;
            self.save_floors(false).await;
            let delay = if pass.failures > 0 {
                failures += 1;
                backoff(failures, self.settings.max_backoff)
            } else if pass.more && pass.published + pass.dropped > 0 {
                // A backlog (after an outage): keep going while it shrinks.
                failures = 0;
                self.settings.gather
            } else {
                failures = 0;
                self.settings.idle_poll
            };
            next_scan = tokio::time::Instant::now() + delay;
        }
    }

    /// The fast path: publishes events committed by this origin's requests and deletes their
    /// rows, without reading anything back. What fails stays for the scan.
    async fn publish_committed(&mut self, batch: Vec<Committed>) {
        if batch.is_empty() || !self.publisher.is_connected() {
            return;
        }
        self.know_leadership().await;
        let leadership = self.leadership_count;
        let connection = self.publisher.connection();
        let outcomes = self
            .publish_rows(
                batch
                    .iter()
                    .map(|c| (c.events.as_slice(), Some(publish_span(c))))
                    .collect(),
            )
            .await;
        let connection = self.connection_since(connection);
        let acked_at = Instant::now();
        let mut first_error = None;
        for (committed, outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    self.held.insert(
                        committed.row.event_id,
                        Held {
                            row: committed.row,
                            acked_at,
                            connection,
                            leadership,
                        },
                    );
                }
                Err(error) => {
                    self.metrics.outbox_publish_failures.inc();
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            tracing::warn!(%error, "publishing game events failed; they stay in the outbox");
        }
        self.flush_held(false).await;
    }

    /// Publishes the events of several rows concurrently (each row's together); per row, the
    /// number of events acknowledged, or the first failure among them (the row then stays,
    /// and all its events are published again later under the same ids).
    async fn publish_rows(
        &self,
        rows: Vec<(&[GameEvent], Option<tracing::Span>)>,
    ) -> Vec<Result<usize, events::EventsError>> {
        let flat: Vec<(usize, &GameEvent, Option<&tracing::Span>)> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, (events, span))| events.iter().map(move |e| (i, e, span.as_ref())))
            .collect();
        let mut results: Vec<Result<usize, events::EventsError>> = vec![Ok(0); rows.len()];
        for chunk in flat.chunks(PUBLISH_CONCURRENCY) {
            let outcomes = futures::future::join_all(chunk.iter().map(|(_, event, span)| {
                let span = span.cloned().unwrap_or_else(tracing::Span::none);
                self.publisher.publish(event).instrument(span)
            }))
            .await;
            for ((row, event, _), outcome) in chunk.iter().zip(outcomes) {
                match (outcome, &mut results[*row]) {
                    (Ok(ack), Ok(count)) => {
                        self.acknowledged(event, ack);
                        *count += 1;
                    }
                    (Ok(ack), Err(_)) => self.acknowledged(event, ack),
                    (Err(error), result @ Ok(_)) => *result = Err(error),
                    (Err(_), Err(_)) => {}
                }
            }
        }
        results
    }

    /// Reads who leads the stream if that was never read: rows published before a first
    /// reading would have no leadership to compare later ones with.
    async fn know_leadership(&mut self) {
        if self.leadership.is_none() {
            let _ = self.read_leadership().await;
        }
    }

    /// Reads who leads the stream (a round trip to its leader); counts a new leadership.
    /// `false` if the broker did not answer.
    async fn read_leadership(&mut self) -> bool {
        match self.publisher.leadership().await {
            Ok(now) => {
                if self.leadership.as_ref() != Some(&now) {
                    if self.leadership.is_some() {
                        tracing::info!(leadership = ?now, "the event stream has a new leadership");
                    }
                    self.leadership = Some(now);
                    self.leadership_count += 1;
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, "the broker did not answer; published rows stay held");
                false
            }
        }
    }

    /// The connection acknowledgements carried if it is still `before` now; 0 (never the
    /// current one, so [`settle`] releases them) if a reconnect happened meanwhile.
    fn connection_since(&self, before: u64) -> u64 {
        if self.publisher.connection() == before {
            before
        } else {
            0
        }
    }

    /// Settles the held rows ([`settle`]): deletes those surely on the broker's disk, in batches
    /// of a partition each, and releases those to publish again. At most every [`FLUSH_EVERY`]
    /// unless `now` (the last pass before a shutdown).
    async fn flush_held(&mut self, now: bool) {
        if delete_on_ack() {
            self.delete_held_on_ack().await;
            return;
        }
        if self.held.is_empty() || (!now && self.last_flush.elapsed() < FLUSH_EVERY) {
            return;
        }
        self.last_flush = Instant::now();
        let durable_after = self.settings.durable_after;
        let connection_before = self.publisher.connection();
        let began = Instant::now();
        let due = self
            .held
            .values()
            .any(|h| h.acked_at + durable_after <= began);
        let answered = if durable_after.is_zero() {
            // The broker fsyncs before acknowledging: the acknowledgement was the proof.
            true
        } else if due && self.publisher.is_connected() {
            // The stream's info: an answer from its leader, and who that is.
            self.read_leadership().await
        } else {
            false
        };
        let trip = RoundTrip {
            began,
            connection_before,
            connection_after: self.publisher.connection(),
            answered,
            leadership: self.leadership_count,
        };
        let held: Vec<Held> = std::mem::take(&mut self.held).into_values().collect();
        let settled = settle(held, durable_after, trip);
        self.held = settled
            .keep
            .into_iter()
            .map(|h| (h.row.event_id, h))
            .collect();
        if !settled.release.is_empty() {
            self.metrics
                .outbox_republished
                .inc_by(settled.release.len() as u64);
            tracing::warn!(
                events = settled.release.len(),
                "the broker connection or the stream's leader changed before these events were \
                 surely on disk; publishing them again"
            );
        }
        self.remove_rows(settled.delete).await;
    }

    /// Deletes every held row at once, partition by partition.
    async fn remove_rows(&self, rows: Vec<PendingEvent>) {
        let mut by_shard = vec![Vec::new(); SHARDS as usize];
        for row in rows {
            if let Some(rows) = by_shard.get_mut(row.shard as usize) {
                rows.push(row);
            }
        }
        let removals = by_shard
            .iter()
            .filter(|rows| !rows.is_empty())
            .map(|rows| self.store().remove(rows));
        for result in futures::future::join_all(removals).await {
            if let Err(error) = result {
                // Published but still pending: the scan publishes them again, and the broker's
                // duplicate window drops the repeats.
                tracing::warn!(%error, "cannot clear published outbox rows");
            }
        }
    }

    /// The mutation `RELAY_DELETE_ON_ACK=1` (feature `test-mutations` only): every row goes
    /// as soon as its event is acknowledged, the rule the tests must catch.
    async fn delete_held_on_ack(&mut self) {
        let rows: Vec<PendingEvent> = std::mem::take(&mut self.held)
            .into_values()
            .map(|h| h.row)
            .collect();
        self.remove_rows(rows).await;
    }

    /// Counts an acknowledged publication.
    fn acknowledged(&self, event: &GameEvent, ack: events::Published) {
        let lag_ms = now_ms().saturating_sub(event.occurred_at).max(0);
        self.metrics.outbox_lag.observe(lag_ms as f64 / 1000.0);
        self.metrics
            .outbox_published
            .with_label_values(&[event.kind.as_str()])
            .inc();
        if ack.duplicate {
            self.metrics.outbox_duplicates.inc();
        }
    }

    async fn save_floors(&mut self, now: bool) {
        if !now && self.last_save.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_save = Instant::now();
        for shard in 0..SHARDS {
            let i = shard as usize;
            if self.floors[i] != self.saved[i] {
                match self
                    .store()
                    .save_floor(self.region(), shard, self.floors[i])
                    .await
                {
                    Ok(()) => self.saved[i] = self.floors[i],
                    Err(error) => tracing::warn!(%error, shard, "cannot save the outbox floor"),
                }
            }
        }
    }

    /// One pass over every partition of the region.
    pub async fn pass(&mut self) -> Pass {
        // The scan skips held rows, so this need not run before every pass.
        self.flush_held(false).await;
        if !self.publisher.is_connected() {
            // Nothing can be published: only count what waits (no per-row reads of the games,
            // which would load Cassandra for nothing while the broker is away).
            self.metrics.outbox_publish_failures.inc();
            let counted = self.count_pending().await;
            self.metrics
                .outbox_pending
                .set(i64::try_from(counted.pending).unwrap_or(i64::MAX));
            self.report_oldest(&counted);
            return Pass {
                failures: 1,
                ..counted
            };
        }
        self.know_leadership().await;
        let shards: Vec<(i32, i64)> = (0..SHARDS).map(|s| (s, self.floors[s as usize])).collect();
        let this = &*self;
        let results = futures::future::join_all(
            shards
                .into_iter()
                .map(|(shard, floor)| async move { (shard, this.pass_shard(shard, floor).await) }),
        )
        .await;
        let mut total = Pass::default();
        for (shard, (pass, floor, held)) in results {
            self.floors[shard as usize] = floor;
            self.held
                .extend(held.into_iter().map(|h| (h.row.event_id, h)));
            total.published += pass.published;
            total.failures += pass.failures;
            total.dropped += pass.dropped;
            total.pending += pass.pending;
            total.more |= pass.more;
            total.unread |= pass.unread;
            if let Some(at) = pass.oldest_pending_ms {
                total.saw_pending(at);
            }
        }
        self.metrics
            .outbox_pending
            .set(i64::try_from(total.pending).unwrap_or(i64::MAX));
        self.report_oldest(&total);
        if delete_on_ack() {
            self.flush_held(true).await;
        }
        total
    }

    /// Reports the oldest pending row's age to the metrics (see [`oldest_to_report`]).
    fn report_oldest(&mut self, pass: &Pass) {
        self.oldest_reported = oldest_to_report(self.oldest_reported, pass);
        self.metrics.set_outbox_oldest_pending(self.oldest_reported);
    }

    /// The rows waiting from each partition's floor (up to the pass's page limit each), and
    /// the oldest of them.
    async fn count_pending(&self) -> Pass {
        let mut total = Pass::default();
        for shard in 0..SHARDS {
            let floor = self.floors[shard as usize];
            let mut after = None;
            for _page in 0..self.settings.pages_per_pass {
                let Ok(rows) = self
                    .store()
                    .pending_page(self.region(), shard, floor, after, self.settings.page)
                    .await
                else {
                    total.unread = true;
                    break;
                };
                total.pending += rows.len();
                for row in &rows {
                    total.saw_pending(row.queued_at_ms);
                }
                match rows.last() {
                    Some(last) if rows.len() == self.settings.page => {
                        after = Some((last.queued_at_ms, last.event_id));
                    }
                    _ => break,
                }
            }
        }
        total
    }

    /// One partition, page by page; returns the figures, the partition's new floor and the
    /// rows it published (to hold).
    async fn pass_shard(&self, shard: i32, floor: i64) -> (Pass, i64, Vec<Held>) {
        let mut pass = Pass::default();
        let mut held = Vec::new();
        let mut after: Option<(i64, api::EventId)> = None;
        let mut oldest_left: Option<i64> = None;
        let now = now_ms();
        let boundary = now.saturating_sub(self.settings.safety.as_millis() as i64);
        // Bounded, so one pass never runs for long; the next pass goes on from the floor.
        for _page in 0..self.settings.pages_per_pass {
            let rows = match self
                .store()
                .pending_page(self.region(), shard, floor, after, self.settings.page)
                .await
            {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, shard, "cannot read the outbox");
                    pass.failures += 1;
                    pass.unread = true;
                    return (pass, floor, held);
                }
            };
            let full = rows.len() == self.settings.page;
            let (left, published) = self.relay_rows(&rows, now, &mut pass).await;
            // Held rows stay above the floor: a reconnect may release them to the scan.
            let still_held = rows.iter().filter(|r| self.held.contains_key(&r.event_id));
            let kept = left
                .iter()
                .copied()
                .chain(still_held)
                .map(|r| r.queued_at_ms)
                .chain(published.iter().map(|h| h.row.queued_at_ms))
                .min();
            if let Some(min) = kept {
                oldest_left = Some(oldest_left.map_or(min, |o: i64| o.min(min)));
            }
            pass.pending += left.len();
            for row in &left {
                pass.saw_pending(row.queued_at_ms);
            }
            held.extend(published);
            match rows.last() {
                Some(last) if full => after = Some((last.queued_at_ms, last.event_id)),
                _ => {
                    after = None;
                    break;
                }
            }
        }
        pass.more = after.is_some();
        let floor = next_floor(floor, oldest_left, boundary, after.map(|(at, _)| at));
        (pass, floor, held)
    }

    /// Decides and publishes one page, deleting the rows of events that never happened; returns
    /// the rows left pending and the published ones (to hold). Rows already held are skipped.
    async fn relay_rows<'a>(
        &self,
        rows: &'a [PendingEvent],
        now: i64,
        pass: &mut Pass,
    ) -> (Vec<&'a PendingEvent>, Vec<Held>) {
        let rows: Vec<&'a PendingEvent> = rows
            .iter()
            .filter(|r| !self.held.contains_key(&r.event_id))
            .collect();
        // In chunks: bounded concurrency against Cassandra (and plain join_all keeps the
        // futures Send for the spawned task, which stream combinators over borrows do not).
        let mut decisions: Vec<Result<Decision, StoreError>> = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(DECIDE_CONCURRENCY) {
            decisions.extend(
                futures::future::join_all(chunk.iter().map(|row| self.decide(row, now))).await,
            );
        }
        let connected = self.publisher.is_connected();
        let mut done: Vec<PendingEvent> = Vec::new();
        let mut left: Vec<&PendingEvent> = Vec::new();
        let mut to_publish: Vec<(&PendingEvent, Vec<GameEvent>)> = Vec::new();
        for (&row, decision) in rows.iter().zip(decisions) {
            match decision {
                Ok(Decision::Publish(events)) if connected => to_publish.push((row, events)),
                Ok(Decision::Publish(_)) => {
                    // Not connected to the broker: the publication fails without an attempt.
                    self.metrics.outbox_publish_failures.inc();
                    pass.failures += 1;
                    left.push(row);
                }
                Ok(Decision::Drop) => {
                    tracing::info!(event_id = %row.event_id, game_id = %row.game_id, kind = %row.kind,
                        "dropping an outbox row whose event never happened");
                    self.metrics
                        .outbox_dropped
                        .with_label_values(&[row.kind.as_str()])
                        .inc();
                    pass.dropped += 1;
                    done.push(row.clone());
                }
                Ok(Decision::Wait) => left.push(row),
                Err(error) => {
                    tracing::warn!(%error, event_id = %row.event_id, "cannot check an outbox row");
                    pass.failures += 1;
                    left.push(row);
                }
            }
        }
        let leadership = self.leadership_count;
        let connection = self.publisher.connection();
        let outcomes = self
            .publish_rows(
                to_publish
                    .iter()
                    .map(|(_, events)| (events.as_slice(), None))
                    .collect(),
            )
            .await;
        let connection = self.connection_since(connection);
        let acked_at = Instant::now();
        let mut published = Vec::new();
        let mut first_error = None;
        for ((row, _), outcome) in to_publish.into_iter().zip(outcomes) {
            match outcome {
                Ok(count) => {
                    pass.published += count;
                    published.push(Held {
                        row: row.clone(),
                        acked_at,
                        connection,
                        leadership,
                    });
                }
                Err(error) => {
                    self.metrics.outbox_publish_failures.inc();
                    first_error.get_or_insert(error);
                    pass.failures += 1;
                    left.push(row);
                }
            }
        }
        if let Some(error) = first_error {
            tracing::warn!(%error, "publishing game events failed; they stay in the outbox");
        }
        if !done.is_empty()
            && let Err(error) = self.store().remove(&done).await
        {
            // Still pending: the next pass decides them again.
            tracing::warn!(%error, "cannot clear dropped outbox rows");
            pass.failures += 1;
            left.extend(rows.iter().filter(|r| done.iter().any(|d| d == **r)));
        }
        (left, published)
    }

    /// Whether a row's event is committed, from the committed game state.
    async fn decide(&self, row: &PendingEvent, now: i64) -> Result<Decision, StoreError> {
        let age = now.saturating_sub(row.queued_at_ms);
        if age < self.settings.fresh.as_millis() as i64 {
            return Ok(Decision::Wait);
        }
        let old = age > self.settings.grace.as_millis() as i64;
        if row.expiry {
            return self.expiry_decision(row, now).await;
        }
        match row.kind {
            EventType::Started => {
                // The claim of the user's active slot commits a start.
                if self.games.active_game_id(&row.user_id).await? == Some(row.game_id) {
                    return self.started(row).await;
                }
                // Exits happen only to committed games.
                let game = self.games.game(row.game_id).await?;
                if let Some(game) = &game
                    && game.status == GameStatus::Exited
                {
                    return Ok(Decision::Publish(started_events(game)));
                }
                if !old {
                    return Ok(Decision::Wait);
                }
                // Definitive answer: SERIAL reads finish any claim or exit still in flight.
                if self.store().active_game_id_serial(&row.user_id).await? == Some(row.game_id) {
                    return self.started(row).await;
                }
                match self.store().game_serial(row.game_id).await? {
                    Some(game) if game.status == GameStatus::Exited => {
                        Ok(Decision::Publish(started_events(&game)))
                    }
                    _ => Ok(Decision::Drop),
                }
            }
            EventType::Exited | EventType::Ended => {
                let Some(game) = self.games.game(row.game_id).await? else {
                    // Expired with its retention, or never written.
                    return Ok(if old { Decision::Drop } else { Decision::Wait });
                };
                if game.shared.is_some() && row.kind == EventType::Exited {
                    return self.seat_decision(row, &game, old).await;
                }
                let max_age = self.max_age;
                let ended = |game: Option<crate::domain::Game>| async move {
                    let game = game.filter(|g| g.status == GameStatus::Exited)?;
                    if ended_at_max_age(max_age, &game) {
                        // Not by this row's exit (an exit is never judged at or after the
                        // expiry): the game's expiry row publishes that end.
                        return Some(Vec::new());
                    }
                    let chain = chain_of(&game).await;
                    Some(end_events(&game, row.kind, chain.as_deref(), None))
                        .filter(|events| !events.is_empty())
                };
                let publish = |events: Vec<GameEvent>| {
                    if events.is_empty() {
                        Decision::Drop
                    } else {
                        Decision::Publish(events)
                    }
                };
                if let Some(events) = ended(Some(game)).await {
                    return Ok(publish(events));
                }
                if !old {
                    return Ok(Decision::Wait);
                }
                match ended(self.store().game_serial(row.game_id).await?).await {
                    Some(events) => Ok(publish(events)),
                    None => Ok(Decision::Drop),
                }
            }
            EventType::Joined => match self.games.game(row.game_id).await? {
                Some(game) if game.shared.is_some() => self.seat_decision(row, &game, old).await,
                _ if old => Ok(Decision::Drop),
                _ => Ok(Decision::Wait),
            },
            // No row is of this kind (breaks come with their game's end).
            EventType::Break => Ok(Decision::Drop),
        }
    }

    /// An expiry row (see [`PendingEvent::expiry`]), due: once the grace has passed since the
    /// game's expiry (every exit judged before it has committed or died by then), ends the game
    /// at its expiry if nobody ended it (the exit's LWT: of racing relays, one writes and the
    /// others read its end), then publishes that end with the seats that never exited. A game
    /// that ended before its expiry drops the row: its last exit's row published its end.
    async fn expiry_decision(&self, row: &PendingEvent, now: i64) -> Result<Decision, StoreError> {
        let Some(game) = self.games.game(row.game_id).await? else {
            // Gone with its retention.
            return Ok(Decision::Drop);
        };
        let expiry = self.max_age.expires_at(&game);
        let game = match (game.status, game.exited_at_ms) {
            (GameStatus::Exited, Some(at)) if at < expiry => return Ok(Decision::Drop),
            (GameStatus::Exited, _) => game,
            (GameStatus::Active, _) if now < expiry => {
                // A longer `GAME_MAX_AGE` since its start: due later.
                let later = PendingEvent::expiry(&game.region, &game, expiry);
                let ttl = self
                    .max_age
                    .slot_ttl_seconds(&game, now)
                    .saturating_add(self.finished_ttl_seconds);
                self.store().queue(&later, ttl).await?;
                return Ok(Decision::Drop);
            }
            (GameStatus::Active, _)
                if now < expiry.saturating_add(self.settings.grace.as_millis() as i64) =>
            {
                return Ok(Decision::Wait);
            }
            (GameStatus::Active, _) => {
                match self
                    .games
                    .exit_game(&game, expiry, self.finished_ttl_seconds)
                    .await?
                {
                    ExitOutcome::Exited(at) | ExitOutcome::AlreadyExited(at) => {
                        if at < expiry {
                            // Its last exit won the race: that end is published from its row.
                            return Ok(Decision::Drop);
                        }
                        let mut ended = game;
                        ended.status = GameStatus::Exited;
                        ended.exited_at_ms = Some(at);
                        ended
                    }
                    ExitOutcome::NotFound => return Ok(Decision::Drop),
                }
            }
        };
        let unexited = match game.shared {
            Some(shared) => self
                .games
                .seats(game.id, shared.max_players)
                .await?
                .into_iter()
                .filter(|s| s.result.is_none())
                .map(|s| UnexitedSeat {
                    seat: s.seat,
                    user_id: s.user_id,
                })
                .collect(),
            None => vec![UnexitedSeat {
                seat: 0,
                user_id: game.user_id.clone(),
            }],
        };
        let chain = chain_of(&game).await;
        let events = end_events(&game, EventType::Ended, chain.as_deref(), Some(unexited));
        Ok(if events.is_empty() {
            Decision::Drop
        } else {
            Decision::Publish(events)
        })
    }

    /// A join's or a seat's exit: committed once the row's user holds a seat (with its result,
    /// for an exit). Seats are LWT rows read at the default consistency; after the grace, a
    /// seat still missing (a join that gave it back, or died before taking it) drops the row.
    async fn seat_decision(
        &self,
        row: &PendingEvent,
        game: &crate::domain::Game,
        old: bool,
    ) -> Result<Decision, StoreError> {
        let max_players = game.shared.map_or(1, |s| s.max_players);
        let seats = self.games.seats(row.game_id, max_players).await?;
        let seat = seats.iter().find(|s| s.user_id == row.user_id);
        let view = game.view();
        let event = match (row.kind, seat) {
            (EventType::Joined, Some(seat)) => Some(api::GameEvent::joined(
                &view,
                seat.seat,
                &seat.user_id,
                seat.joined_at_ms,
            )),
            (EventType::Exited, Some(seat)) => seat
                .result
                .map(|r| api::GameEvent::seat_exited(&view, seat.seat, &seat.user_id, &r)),
            _ => None,
        };
        Ok(match event {
            Some(event) => Decision::Publish(vec![event]),
            None if old => Decision::Drop,
            None => Decision::Wait,
        })
    }

    /// The start event of a committed game, from its row.
    async fn started(&self, row: &PendingEvent) -> Result<Decision, StoreError> {
        Ok(match self.games.game(row.game_id).await? {
            Some(game) => Decision::Publish(started_events(&game)),
            None => Decision::Wait,
        })
    }
}

/// What a start's row publishes: `game.started`, and for a shared game the creator's
/// `game.joined` of seat 0 (taken with the start).
pub fn started_events(game: &crate::domain::Game) -> Vec<GameEvent> {
    let view = game.view();
    let mut events = vec![GameEvent::started(&view)];
    if game.shared.is_some() {
        events.push(GameEvent::joined(
            &view,
            0,
            &game.user_id,
            game.created_at_ms,
        ));
    }
    events
}

/// What the row of an ended game publishes: for a one-player game's exit (`Exited`), its
/// `game.exited` (seat 0), then, for it and a shared game's end (`Ended`), the `game.ended`
/// and its `game.break`s. Empty if the game has not ended.
///
/// A sealed game's `final` ticks and breaks come from `chain`, its schedule (the caller's
/// [`crate::sealed::Chain`] of `game`; without one, a sealed game's events carry neither):
/// the rounds that broke at or before the step the game froze at, each revealed by the end
/// (see [`crate::sealed`]), never a later one, and no key.
pub fn end_events(
    game: &crate::domain::Game,
    kind: EventType,
    chain: Option<&crate::sealed::Chain>,
    unexited: Option<Vec<UnexitedSeat>>,
) -> Vec<GameEvent> {
    let view = game.view();
    let at_max_age = unexited.is_some();
    let ended = match unexited {
        Some(seats) => GameEvent::ended_at_max_age(&view, seats),
        None => GameEvent::ended(&view),
    };
    let Some(mut ended) = ended else {
        return Vec::new();
    };
    // Nobody exited at the maximum age: no `game.exited`, whatever the row.
    let kind = if at_max_age { EventType::Ended } else { kind };
    let mut events = Vec::new();
    let (Some(chain), Some(end)) = (chain.filter(|_| game.sealed.is_some()), game.exited_at_ms)
    else {
        if kind == EventType::Exited
            && let Some(exited) = GameEvent::exited(&view)
        {
            events.push(exited);
        }
        events.push(ended);
        events.extend(GameEvent::breaks(&view));
        return events;
    };
    let result = chain.seat_result(end);
    if kind == EventType::Exited {
        events.push(GameEvent::seat_exited(&view, 0, &game.user_id, &result));
    }
    ended.final_tick = result.final_tick;
    ended.breaks = Some(result.final_tick.map_or(0, |t| t.round));
    events.push(ended);
    if let Some(last) = result.final_tick {
        events.extend(
            chain
                .first_breaks(last.step, api::events::MAX_BREAK_EVENTS)
                .into_iter()
                .map(|(round, step)| GameEvent::broke(&view, round, step)),
        );
    }
    events
}

/// Whether `game` (exited) ended at its maximum age rather than by an exit: an exit is never
/// judged at or after the expiry (see [`crate::service`]).
pub fn ended_at_max_age(max_age: MaxAge, game: &Game) -> bool {
    game.exited_at_ms
        .is_some_and(|at| at >= max_age.expires_at(game))
}

/// The chain of `game` if it is sealed, built off the async workers (`None` for any other
/// game, or a sealed row whose root does not match its commitment, which no start writes).
pub async fn chain_of(game: &crate::domain::Game) -> Option<std::sync::Arc<crate::sealed::Chain>> {
    let (params, secret) = game.sealed_params()?;
    let root = secret.root;
    tokio::task::spawn_blocking(move || crate::sealed::Chain::build(&params, &root).ok())
        .await
        .ok()
        .flatten()
        .map(std::sync::Arc::new)
}

/// Whether the relay deletes rows on the bare acknowledgement: the mutation the events tests
/// must catch, compiled in only with the feature `test-mutations` and on only with
/// `RELAY_DELETE_ON_ACK=1`. Never in a production build.
fn delete_on_ack() -> bool {
    #[cfg(feature = "test-mutations")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            let on = std::env::var("RELAY_DELETE_ON_ACK").is_ok_and(|v| v == "1");
            if on {
                tracing::warn!("RELAY_DELETE_ON_ACK=1: deleting outbox rows on the bare acknowledgement (a test mutation)");
            }
            on
        })
    }
    #[cfg(not(feature = "test-mutations"))]
    {
        false
    }
}

/// Where a partition's next scan starts: at the oldest row left pending, but never past
/// `boundary` (now minus the safety window: a row being written may still appear before it),
/// nor past the last row looked at when the pass stopped on its page limit (`stopped_at`), and
/// never back (rows below the old floor were all handled).
fn next_floor(floor: i64, oldest_left: Option<i64>, boundary: i64, stopped_at: Option<i64>) -> i64 {
    let limit = stopped_at.map_or(boundary, |at| at.min(boundary));
    oldest_left.map_or(limit, |o| o.min(limit)).max(floor)
}

/// The span of one fast-path publication: a producer span of its own trace, linked to the
/// request span that committed the event (the relay runs long after, outside any request).
/// Only the event's type and id, never its user.
fn publish_span(committed: &Committed) -> tracing::Span {
    let span = tracing::info_span!(
        "outbox.publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "send",
        event.type = committed.events.first().map_or("", |e| e.kind.as_str()),
        event.id = %committed.row.event_id,
    );
    if let Some(request) = &committed.trace {
        span.add_link(request.clone());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_pending_is_kept_while_a_partition_goes_unread() {
        let seen = |oldest, unread| Pass {
            oldest_pending_ms: oldest,
            unread,
            ..Pass::default()
        };
        // Everything read: what the pass saw, even nothing (caught up).
        assert_eq!(oldest_to_report(Some(5), &seen(Some(9), false)), Some(9));
        assert_eq!(oldest_to_report(Some(5), &seen(None, false)), None);
        // A partition unread: never younger than before.
        assert_eq!(oldest_to_report(Some(5), &seen(Some(9), true)), Some(5));
        assert_eq!(oldest_to_report(Some(5), &seen(None, true)), Some(5));
        assert_eq!(oldest_to_report(Some(9), &seen(Some(5), true)), Some(5));
        assert_eq!(oldest_to_report(None, &seen(Some(7), true)), Some(7));
        let mut pass = Pass::default();
        for at in [30, 10, 20] {
            pass.saw_pending(at);
        }
        assert_eq!(pass.oldest_pending_ms, Some(10));
    }

    #[test]
    fn floors_trail_what_is_left_and_never_go_back() {
        // Everything published: the floor moves up to the safety boundary.
        assert_eq!(next_floor(100, None, 5_000, None), 5_000);
        // A row still waits: the floor stays at it.
        assert_eq!(next_floor(100, Some(2_000), 5_000, None), 2_000);
        // A row newer than the boundary does not lift the floor past the boundary.
        assert_eq!(next_floor(100, Some(9_000), 5_000, None), 5_000);
        // Stopped on a full page at 3_000: rows beyond were not seen.
        assert_eq!(next_floor(100, None, 5_000, Some(3_000)), 3_000);
        assert_eq!(next_floor(100, Some(2_500), 5_000, Some(3_000)), 2_500);
        // A clock that went back never moves the floor back.
        assert_eq!(next_floor(6_000, None, 5_000, None), 6_000);
    }

    fn row(n: u8) -> PendingEvent {
        let region = RegionName::parse("eu").unwrap();
        let user = api::UserId::parse("u").unwrap();
        let game = api::GameId::from(uuid::Uuid::from_bytes([n; 16]));
        PendingEvent::exited(&region, game, &user, 1_000)
    }

    fn held(n: u8, acked_at: Instant, connection: u64) -> Held {
        Held {
            row: row(n),
            acked_at,
            connection,
            leadership: 1,
        }
    }

    #[test]
    fn held_rows_go_once_a_later_request_on_the_same_connection_is_answered() {
        let hold = Duration::from_secs(2);
        let t0 = Instant::now();
        let rows = vec![
            held(1, t0, 7),                          // acked 3 s before the request: on disk
            held(2, t0 + Duration::from_secs(2), 7), // 1 s before: maybe not yet
            held(3, t0, 6),                          // an older connection: republish
            held(4, t0, 0),                          // a reconnect while in flight: republish
        ];
        let trip = RoundTrip {
            began: t0 + Duration::from_secs(3),
            connection_before: 7,
            connection_after: 7,
            answered: true,
            leadership: 1,
        };
        let settled = settle(rows.clone(), hold, trip);
        assert_eq!(settled.delete, vec![row(1)]);
        assert_eq!(settled.release, vec![row(3), row(4)]);
        assert_eq!(settled.keep, vec![rows[1].clone()]);

        // No answer, or a reconnect during the request: nothing is deleted.
        for trip in [
            RoundTrip {
                answered: false,
                ..trip
            },
            RoundTrip {
                connection_before: 7,
                connection_after: 8,
                ..trip
            },
        ] {
            let settled = settle(rows.clone(), hold, trip);
            assert!(settled.delete.is_empty(), "{trip:?}");
            if trip.connection_after == 8 {
                // Every row was acknowledged on a connection that is gone.
                assert_eq!(settled.release.len(), 4);
            } else {
                assert_eq!(settled.keep.len(), 2);
            }
        }
    }

    #[test]
    fn a_new_stream_leadership_releases_what_the_old_one_acknowledged() {
        // R3: the client's connection outlived a leader change (it is connected to a follower,
        // or the leader it was connected to is another node's now).
        let hold = Duration::from_secs(2);
        let t0 = Instant::now();
        let old = held(1, t0, 7);
        let new = Held {
            leadership: 2,
            ..held(2, t0, 7)
        };
        let trip = RoundTrip {
            began: t0 + Duration::from_secs(3),
            connection_before: 7,
            connection_after: 7,
            answered: true,
            leadership: 2,
        };
        let settled = settle(vec![old, new.clone()], hold, trip);
        // Acknowledged under leadership 1, which ended: published again. Under 2, which lasted
        // past the hold: on disk.
        assert_eq!(settled.release, vec![row(1)]);
        assert_eq!(settled.delete, vec![row(2)]);
        // Not yet past the hold under the same leadership: kept.
        let early = RoundTrip {
            began: t0 + Duration::from_secs(1),
            ..trip
        };
        assert_eq!(settle(vec![new.clone()], hold, early).keep, vec![new]);
    }

    #[test]
    fn a_broker_that_fsyncs_before_acknowledging_needs_no_hold() {
        let t0 = Instant::now();
        let trip = RoundTrip {
            began: t0,
            connection_before: 1,
            connection_after: 1,
            answered: true,
            leadership: 1,
        };
        let settled = settle(vec![held(1, t0, 1)], durable_after(Duration::ZERO), trip);
        assert_eq!(settled.delete, vec![row(1)]);
        assert_eq!(
            durable_after(Duration::from_secs(1)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let max = Duration::from_secs(5);
        for failures in 1..=20 {
            let d = backoff(failures, max);
            let base = Duration::from_millis(100 * (1u64 << failures.min(10))).min(max);
            assert!(d >= base / 2 && d <= base, "{failures}: {d:?}");
        }
        assert!(backoff(1, max) <= Duration::from_millis(200));
        assert!(backoff(30, max) >= Duration::from_millis(2_500));
    }

    #[test]
    fn settings_outlast_requests() {
        let s = RelaySettings::new(Duration::from_secs(10), Duration::from_secs(5));
        assert!(s.grace > Duration::from_secs(10) * 2);
        assert!(s.safety > Duration::from_secs(5));
    }
}
