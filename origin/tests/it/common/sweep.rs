//! Drops the keyspaces that earlier test runs left on a long-lived Cassandra node.
//!
//! Every test process, edge test file, browser run and fuzz run creates a keyspace of its own
//! and never drops it (a run that is killed could not anyway). On a node that outlives many
//! runs (`make dev`'s, or the one `make test` reuses) they pile up, about fifteen tables each,
//! until a 1 GiB heap is full and the node dies. So the first connection of a test process drops
//! every test keyspace older than [`STALE_AFTER_MS`], far longer than any run lasts, so a run
//! in progress beside this one keeps its data. A keyspace's age is its oldest table's: table
//! ids are time-based UUIDs.

use std::collections::HashMap;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::OnceCell;

/// Test keyspaces older than this are dropped: six hours, six times the longest CI run.
pub const STALE_AFTER_MS: i64 = 6 * 60 * 60 * 1_000;

/// The prefixes of the keyspaces tests and benches create (never `seedsync`, the dev stack's).
const TEST_PREFIXES: [&str; 5] = ["test_", "edge_", "e2e_", "fuzz_", "bench_"];

/// Whether `keyspace`, created at `created_ms`, is a test keyspace to drop at `now_ms`.
pub fn is_stale_test_keyspace(keyspace: &str, created_ms: i64, now_ms: i64) -> bool {
    TEST_PREFIXES.iter().any(|p| keyspace.starts_with(p))
        && now_ms.saturating_sub(created_ms) > STALE_AFTER_MS
}

/// The Unix ms a time-based (version 1) UUID was made at; `None` for any other version.
pub fn created_ms(id: uuid::Uuid) -> Option<i64> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    i64::try_from(secs)
        .ok()?
        .checked_mul(1_000)?
        .checked_add(i64::from(nanos / 1_000_000))
}

static SWEPT: OnceCell<()> = OnceCell::const_new();

/// Once per test process: drops the stale test keyspaces of the node at `CASSANDRA_HOSTS`.
/// A failure is only printed: the sweep is housekeeping, and the test's own connection reports
/// an unreachable node better.
pub async fn sweep_stale_test_keyspaces() {
    SWEPT
        .get_or_init(|| async {
            if let Err(e) = sweep().await {
                eprintln!("test keyspace sweep skipped: {e}");
            }
        })
        .await;
}

type SweepError = Box<dyn std::error::Error>;

async fn sweep() -> Result<(), SweepError> {
    let session = session().await?;
    let dropped = drop_keyspaces_where(&session, is_stale_test_keyspace).await?;
    if !dropped.is_empty() {
        eprintln!(
            "dropped {} test keyspace(s) older than {STALE_AFTER_MS} ms",
            dropped.len()
        );
    }
    Ok(())
}

/// A session with the node at `CASSANDRA_HOSTS` (as the tests' origins use).
pub async fn session() -> Result<Session, SweepError> {
    let hosts = std::env::var("CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1:9042".into());
    Ok(SessionBuilder::new()
        .known_nodes(hosts.split(',').map(str::trim))
        .build()
        .await?)
}

/// Drops every keyspace for which `doomed(name, created_ms, now_ms)` holds; answers their names.
pub async fn drop_keyspaces_where(
    session: &Session,
    mut doomed: impl FnMut(&str, i64, i64) -> bool,
) -> Result<Vec<String>, SweepError> {
    let rows = session
        .query_unpaged("SELECT keyspace_name, id FROM system_schema.tables", ())
        .await?
        .into_rows_result()?;
    let mut oldest: HashMap<String, i64> = HashMap::new();
    for row in rows.rows::<(String, uuid::Uuid)>()? {
        let (keyspace, id) = row?;
        if let Some(at) = created_ms(id) {
            let entry = oldest.entry(keyspace).or_insert(at);
            *entry = (*entry).min(at);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let now = i64::try_from(now)?;
    let mut dropped = Vec::new();
    for (keyspace, at) in oldest {
        if doomed(&keyspace, at, now) {
            session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), ())
                .await?;
            dropped.push(keyspace);
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the real node: a keyspace's age comes from its tables' ids, and only what the rule
    /// names is dropped.
    #[tokio::test]
    async fn the_sweep_ages_keyspaces_by_their_tables_and_drops_only_the_doomed() {
        let session = session()
            .await
            .expect("a Cassandra node (scripts/cassandra.sh start)");
        let doomed = format!("test_sweep_{}", std::process::id());
        let kept = format!("test_sweepkeep_{}", std::process::id());
        for keyspace in [&doomed, &kept] {
            session
                .query_unpaged(format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"), ())
                .await
                .unwrap();
            session
                .query_unpaged(
                    format!("CREATE TABLE IF NOT EXISTS {keyspace}.t (k int PRIMARY KEY)"),
                    (),
                )
                .await
                .unwrap();
        }
        let mut ages = Vec::new();
        let dropped = drop_keyspaces_where(&session, |name, created, now| {
            if name == doomed || name == kept {
                ages.push((name.to_owned(), now - created));
            }
            name == doomed && created <= now
        })
        .await
        .unwrap();
        assert_eq!(dropped, vec![doomed.clone()]);
        assert_eq!(ages.len(), 2, "both keyspaces were aged: {ages:?}");
        for (name, age) in &ages {
            assert!(
                (0..60_000).contains(age),
                "{name} is {age} ms old, made seconds ago"
            );
        }
        let left: Vec<String> = session
            .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows::<(String,)>()
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert!(!left.contains(&doomed), "{doomed} is still there");
        assert!(left.contains(&kept), "{kept} was dropped");
        session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {kept}"), ())
            .await
            .unwrap();
    }

    #[test]
    fn only_old_test_keyspaces_are_stale() {
        let now = 1_800_000_000_000;
        let old = now - STALE_AFTER_MS - 1;
        assert!(is_stale_test_keyspace("test_123_abc", old, now));
        assert!(is_stale_test_keyspace("edge_rooms_42_x1", old, now));
        assert!(is_stale_test_keyspace("e2e_1765000000_12", old, now));
        // A run in progress beside this one.
        assert!(!is_stale_test_keyspace("test_123_abc", now - 60_000, now));
        // Never the dev stack's data or Cassandra's own.
        assert!(!is_stale_test_keyspace("seedsync", old, now));
        assert!(!is_stale_test_keyspace("system_schema", old, now));
    }

    #[test]
    fn a_time_based_uuid_tells_when_it_was_made() {
        // 2026-12-07T00:00:00Z as a version 1 UUID (made from its 100 ns count since 1582).
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_796_601_600, 0);
        let id = uuid::Uuid::new_v1(ts, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(created_ms(id), Some(1_796_601_600_000));
        assert_eq!(created_ms(uuid::Uuid::new_v4()), None);
    }
}
