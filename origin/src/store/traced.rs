//! The one way the store runs a statement: [`Store::run`] times it into
//! `seedsync_cassandra_statement_duration_seconds{statement}` and, inside a traced operation
//! (a request, a relay publication), opens a client span for it.
//!
//! The span names the statement and says its consistency and whether it is a lightweight
//! transaction (with its serial consistency). It never holds the bound values: they are user
//! ids, idempotency keys and game state. Statements outside any span (registry heartbeats,
//! the relay's polling passes) are timed but not traced, so they do not flood the collector
//! with one-span traces every few milliseconds.

use std::future::Future;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec};
use scylla::errors::ExecutionError;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use tracing::Instrument;

use scylla::deserialize::row::DeserializeRow;

use super::{Store, StoreError, query_error};

/// The statement latency histogram's name (alert rules refer to it).
pub const STATEMENT_DURATION: &str = "seedsync_cassandra_statement_duration_seconds";

/// A new, unregistered statement latency histogram (the metrics registry adopts it: see
/// [`crate::metrics::Metrics::register`]).
pub(crate) fn statement_histogram() -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(
            STATEMENT_DURATION,
            "Cassandra statement latency, by statement (including failed ones)",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["statement"],
    )
    .expect("valid metric")
}

/// The CQL name of a consistency level, as the span attribute writes it.
pub(crate) fn consistency_name(consistency: Consistency) -> &'static str {
    match consistency {
        Consistency::Any => "ANY",
        Consistency::One => "ONE",
        Consistency::Two => "TWO",
        Consistency::Three => "THREE",
        Consistency::Quorum => "QUORUM",
        Consistency::All => "ALL",
        Consistency::LocalQuorum => "LOCAL_QUORUM",
        Consistency::EachQuorum => "EACH_QUORUM",
        Consistency::LocalOne => "LOCAL_ONE",
        Consistency::Serial => "SERIAL",
        Consistency::LocalSerial => "LOCAL_SERIAL",
    }
}

fn serial_name(serial: SerialConsistency) -> &'static str {
    match serial {
        SerialConsistency::Serial => "SERIAL",
        SerialConsistency::LocalSerial => "LOCAL_SERIAL",
    }
}

/// The session's defaults, for statements that set no consistency of their own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub(crate) consistency: Consistency,
    pub(crate) serial: SerialConsistency,
}

/// Whether a statement is a lightweight transaction (a Paxos round): its span says so, with
/// the serial consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Lwt,
}

impl Store {
    /// Runs a read through [`Store::run`] and decodes its first row, if any. Every failure
    /// (the query, a result without rows, a row of the wrong types) is reported as
    /// `operation`, the words an operator reads in the error.
    pub(crate) async fn first_row<R>(
        &self,
        name: &'static str,
        kind: Kind,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        operation: &'static str,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let fail = query_error(operation);
        let result = self
            .run(name, kind, statement, values)
            .await
            .map_err(|e| fail(&e))?;
        let rows = result.into_rows_result().map_err(|e| fail(&e))?;
        rows.maybe_first_row::<R>().map_err(|e| fail(&e))
    }

    /// Runs `statement` (called `name` in spans and metrics: a fixed string, never CQL with
    /// values) with `values`, timed and, inside a traced operation, traced.
    pub(crate) async fn run(
        &self,
        name: &'static str,
        kind: Kind,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, ExecutionError> {
        let consistency = statement
            .get_consistency()
            .unwrap_or(self.defaults.consistency);
        let serial = statement.get_serial_consistency();
        self.observe_with(
            name,
            kind,
            consistency,
            serial,
            self.session.execute_unpaged(statement, values),
        )
        .await
    }

    /// Times and traces `execute` (a statement or batch the caller started) as [`Store::run`]
    /// does.
    pub(crate) async fn observe<T>(
        &self,
        name: &'static str,
        kind: Kind,
        consistency: Consistency,
        execute: impl Future<Output = Result<T, ExecutionError>>,
    ) -> Result<T, ExecutionError> {
        self.observe_with(name, kind, consistency, None, execute)
            .await
    }

    async fn observe_with<T>(
        &self,
        name: &'static str,
        kind: Kind,
        consistency: Consistency,
        serial: Option<SerialConsistency>,
        execute: impl Future<Output = Result<T, ExecutionError>>,
    ) -> Result<T, ExecutionError> {
        let started = Instant::now();
        let result = if tracing::Span::current().is_none() {
            execute.await
        } else {
            let serial = match kind {
                Kind::Lwt => serial_name(serial.unwrap_or(self.defaults.serial)),
                Kind::Plain => "",
            };
            let span = tracing::info_span!(
                "cassandra",
                otel.name = name,
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                db.system.name = "cassandra",
                db.operation.name = name,
                db.cassandra.consistency_level = consistency_name(consistency),
                db.cassandra.lwt = kind == Kind::Lwt,
                db.cassandra.serial_consistency_level = serial,
            );
            let result = execute.instrument(span.clone()).await;
            if result.is_err() {
                span.record("otel.status_code", "error");
            }
            result
        };
        self.latency
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_has_the_name_the_rules_use() {
        let histogram = statement_histogram();
        histogram.with_label_values(&["select_game"]).observe(0.002);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(histogram)).unwrap();
        let families = registry.gather();
        assert_eq!(families[0].name(), STATEMENT_DURATION);
    }

    #[test]
    fn consistency_names_are_cql() {
        assert_eq!(consistency_name(Consistency::LocalQuorum), "LOCAL_QUORUM");
        assert_eq!(serial_name(SerialConsistency::LocalSerial), "LOCAL_SERIAL");
    }
}
