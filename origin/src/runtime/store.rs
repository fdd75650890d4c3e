//! Where runtime settings versions live: the `runtime_settings` table (migration 0005), one
//! partition, newest version first, so the current version is a one-row single-partition
//! read; or memory (tests, and origins on the memory store).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::Content;
use crate::store::{Store, StoreError, lwt_outcome, query_error};

/// The one partition key: every origin of the keyspace shares one settings history.
const SCOPE: &str = "origin";

/// One stored version of the overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredVersion {
    /// 1, 2, ... (0 stands for "none stored").
    pub version: i64,
    /// Variable name -> value.
    pub content: Content,
    /// Which origin stored it, for whom.
    pub changed_by: String,
    /// Unix ms.
    pub changed_at_ms: i64,
}

/// The versions' store.
#[async_trait]
pub trait SettingsStore: Send + Sync + std::fmt::Debug {
    /// The newest version, if any.
    async fn latest(&self) -> Result<Option<StoredVersion>, StoreError>;
    /// Version `version`, if stored.
    async fn get(&self, version: i64) -> Result<Option<StoredVersion>, StoreError>;
    /// Stores `version` unless that number is taken (then `false`, nothing written).
    async fn insert_if_absent(&self, version: &StoredVersion) -> Result<bool, StoreError>;
}

/// Versions in memory, for one process.
#[derive(Debug, Default)]
pub struct MemorySettingsStore {
    versions: Mutex<BTreeMap<i64, StoredVersion>>,
}

#[async_trait]
impl SettingsStore for MemorySettingsStore {
    async fn latest(&self) -> Result<Option<StoredVersion>, StoreError> {
        let versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(versions.values().next_back().cloned())
    }

    async fn get(&self, version: i64) -> Result<Option<StoredVersion>, StoreError> {
        let versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(versions.get(&version).cloned())
    }

    async fn insert_if_absent(&self, version: &StoredVersion) -> Result<bool, StoreError> {
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if versions.contains_key(&version.version) {
            return Ok(false);
        }
        versions.insert(version.version, version.clone());
        Ok(true)
    }
}

/// Versions in Cassandra, in the games keyspace.
#[derive(Debug, Clone)]
pub struct CassandraSettingsStore {
    store: Store,
    latest: PreparedStatement,
    get: PreparedStatement,
    insert: PreparedStatement,
}

type Row = (i64, Option<String>, Option<String>, Option<CqlTimestamp>);

impl CassandraSettingsStore {
    /// Prepares the statements over `keyspace`'s `runtime_settings` (made by the migrations,
    /// which [`Store::connect`] checked).
    pub async fn connect(
        store: Store,
        keyspace: &str,
    ) -> Result<CassandraSettingsStore, StoreError> {
        let session = store.session();
        let prepare = |cql: String| async move {
            session
                .prepare(cql)
                .await
                .map_err(|e| query_error("prepare")(&e))
        };
        let columns = "version, content, changed_by, changed_at";
        let mut latest = prepare(format!(
            "SELECT {columns} FROM {keyspace}.runtime_settings WHERE scope = '{SCOPE}' LIMIT 1"
        ))
        .await?;
        latest.set_is_idempotent(true);
        let mut get = prepare(format!(
            "SELECT {columns} FROM {keyspace}.runtime_settings WHERE scope = '{SCOPE}' AND version = ?"
        ))
        .await?;
        get.set_is_idempotent(true);
        // The LWT: of two writers making the same version, exactly one is applied. The
        // session's serial consistency (CASSANDRA_SERIAL_CONSISTENCY) governs its Paxos round.
        let insert = prepare(format!(
            "INSERT INTO {keyspace}.runtime_settings (scope, version, content, changed_by, changed_at) \
             VALUES ('{SCOPE}', ?, ?, ?, ?) IF NOT EXISTS"
        ))
        .await?;
        Ok(CassandraSettingsStore {
            store,
            latest,
            get,
            insert,
        })
    }

    async fn one(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        operation: &'static str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let result = self
            .store
            .session()
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| query_error(operation)(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let Some((version, content, changed_by, changed_at)) = rows
            .maybe_first_row::<Row>()
            .map_err(|e| query_error(operation)(&e))?
        else {
            return Ok(None);
        };
        let content: Content = serde_json::from_str(content.as_deref().unwrap_or("{}"))
            .map_err(|e| StoreError::Corrupt(format!("runtime settings version {version}: {e}")))?;
        Ok(Some(StoredVersion {
            version,
            content,
            changed_by: changed_by.unwrap_or_default(),
            changed_at_ms: changed_at.map_or(0, |t| t.0),
        }))
    }
}

#[async_trait]
impl SettingsStore for CassandraSettingsStore {
    async fn latest(&self) -> Result<Option<StoredVersion>, StoreError> {
        self.one(&self.latest, (), "read runtime settings").await
    }

    async fn get(&self, version: i64) -> Result<Option<StoredVersion>, StoreError> {
        self.one(&self.get, (version,), "read runtime settings version")
            .await
    }

    async fn insert_if_absent(&self, version: &StoredVersion) -> Result<bool, StoreError> {
        let content = serde_json::to_string(&version.content)
            .map_err(|e| StoreError::Corrupt(format!("runtime settings: {e}")))?;
        let result = self
            .store
            .session()
            .execute_unpaged(
                &self.insert,
                (
                    version.version,
                    content,
                    version.changed_by.as_str(),
                    CqlTimestamp(version.changed_at_ms),
                ),
            )
            .await
            .map_err(|e| query_error("store runtime settings")(&e))?;
        // A losing LWT also returns the winner's row; only [applied] matters here.
        let (applied, _) = lwt_outcome(result, &[], "store runtime settings")?;
        Ok(applied)
    }
}
