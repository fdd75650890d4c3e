//! The registry on Cassandra, in the games keyspace (the one store every region shares):
//! - `regions` (by name): the last heartbeat, written `USING TTL`, so a silent region's row
//!   expires by itself; `TTL(url)` tells how long it has left;
//! - `region_status` (by name, no TTL): `draining` set by an operator, which heartbeats never
//!   touch.
//!
//! Both tables hold one row per region, so listing is a full scan of a handful of rows.

use api::RegionName;
use api::regions::{RegionLoad, RegionRecord, RegionStatus};
use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{Heartbeat, RegionRegistry, Seal, sealed_record};
use crate::store::{Store, StoreError, query_error};

/// The registry's tables and statements over a connected [`Store`]'s session.
#[derive(Debug, Clone)]
pub struct CassandraRegistry {
    store: Store,
    statements: std::sync::Arc<Statements>,
}

#[derive(Debug)]
struct Statements {
    heartbeat: PreparedStatement,
    list: PreparedStatement,
    statuses: PreparedStatement,
    set_status: PreparedStatement,
}

impl CassandraRegistry {
    /// Prepares the statements over the tables in `keyspace` (made by the migrations,
    /// [`crate::store::migrate`], which [`Store::connect`] checked).
    pub async fn connect(store: Store, keyspace: &str) -> Result<CassandraRegistry, StoreError> {
        let session = store.session();
        let prepare = |cql: String| async move {
            session
                .prepare(cql)
                .await
                .map_err(|e| query_error("prepare")(&e))
        };
        let mut heartbeat = prepare(format!(
            "INSERT INTO {keyspace}.regions (name, url, version, in_flight, p99_ms, starts_per_sec, heartbeat_at, sig, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
        ))
        .await?;
        heartbeat.set_is_idempotent(true);
        let mut list = prepare(format!(
            "SELECT name, url, version, in_flight, p99_ms, starts_per_sec, heartbeat_at, TTL(url), sig, expires_at FROM {keyspace}.regions"
        ))
        .await?;
        list.set_is_idempotent(true);
        let mut statuses =
            prepare(format!("SELECT name, status FROM {keyspace}.region_status")).await?;
        statuses.set_is_idempotent(true);
        let mut set_status = prepare(format!(
            "INSERT INTO {keyspace}.region_status (name, status, changed_at) VALUES (?, ?, ?)"
        ))
        .await?;
        set_status.set_is_idempotent(true);
        Ok(CassandraRegistry {
            store,
            statements: std::sync::Arc::new(Statements {
                heartbeat,
                list,
                statuses,
                set_status,
            }),
        })
    }
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i32>,
    Option<f64>,
    Option<CqlTimestamp>,
    Option<i32>,
    Option<String>,
    Option<CqlTimestamp>,
);

#[async_trait]
impl RegionRegistry for CassandraRegistry {
    async fn heartbeat_sealed(
        &self,
        beat: &Heartbeat,
        ttl_seconds: u32,
        seal: Option<&Seal>,
    ) -> Result<(), StoreError> {
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        self.store
            .session()
            .execute_unpaged(
                &self.statements.heartbeat,
                (
                    beat.name.as_str(),
                    beat.url.as_str(),
                    beat.version.as_str(),
                    clamp(beat.load.in_flight),
                    clamp(beat.load.p99_ms),
                    beat.load.starts_per_sec,
                    CqlTimestamp(beat.at_ms),
                    seal.map(|s| s.signature.as_str()),
                    seal.map(|s| CqlTimestamp(s.expires_at_ms)),
                    clamp(ttl_seconds),
                ),
            )
            .await
            .map_err(|e| query_error("region heartbeat")(&e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RegionRecord>, StoreError> {
        let session = self.store.session();
        let statuses = session
            .execute_unpaged(&self.statements.statuses, ())
            .await
            .map_err(|e| query_error("read region status")(&e))?
            .into_rows_result()
            .map_err(|e| query_error("read region status")(&e))?;
        let statuses: std::collections::HashMap<String, RegionStatus> = statuses
            .rows::<(String, Option<String>)>()
            .map_err(|e| query_error("read region status")(&e))?
            .filter_map(Result::ok)
            .filter_map(|(name, status)| Some((name, RegionStatus::parse(status.as_deref()?)?)))
            .collect();
        let rows = session
            .execute_unpaged(&self.statements.list, ())
            .await
            .map_err(|e| query_error("read regions")(&e))?
            .into_rows_result()
            .map_err(|e| query_error("read regions")(&e))?;
        let mut out = Vec::new();
        for row in rows
            .rows::<Row>()
            .map_err(|e| query_error("read regions")(&e))?
        {
            let (name, url, version, in_flight, p99, starts, at, ttl, sig, expires_at) =
                row.map_err(|e| query_error("read regions")(&e))?;
            // A row this service did not write (or half-expired) is skipped, not fatal.
            let (Ok(region), Some(url)) = (RegionName::parse(&name), url) else {
                continue;
            };
            let beat = Heartbeat {
                name: region,
                url,
                version: version.unwrap_or_default(),
                load: RegionLoad {
                    in_flight: u32::try_from(in_flight.unwrap_or(0)).unwrap_or(0),
                    p99_ms: u32::try_from(p99.unwrap_or(0)).unwrap_or(0),
                    starts_per_sec: starts.unwrap_or(0.0),
                },
                at_ms: at.map_or(0, |t| t.0),
            };
            let status = statuses.get(&name).copied().unwrap_or_default();
            let ttl = u32::try_from(ttl.unwrap_or(0)).unwrap_or(0);
            let seal = sig.zip(expires_at).map(|(signature, at)| Seal {
                signature,
                expires_at_ms: at.0,
            });
            out.push(sealed_record(&beat, status, ttl, seal.as_ref()));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn set_status(&self, name: &RegionName, status: RegionStatus) -> Result<(), StoreError> {
        self.store
            .session()
            .execute_unpaged(
                &self.statements.set_status,
                (
                    name.as_str(),
                    status.as_str(),
                    CqlTimestamp(kernel::clock::now_ms()),
                ),
            )
            .await
            .map_err(|e| query_error("set region status")(&e))?;
        Ok(())
    }
}
