//! The versioned schema on the real Cassandra: racing `origin migrate` runs end with one schema,
//! a serving origin refuses a schema it does not know (newer, missing, pending, edited), an
//! existing keyspace's replication is never changed silently, and a crashed migrator's lock
//! expires. Each test uses a keyspace of its own and drops it at the end.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{self, settings};
use origin::Application;
use origin::config::{Replication, Settings};
use origin::store::Store;
use origin::store::migrate::{self, MIGRATIONS_TABLE};
use scylla::client::session::Session;

/// Settings for a keyspace of this test's own (`suffix`), serving origins only checking.
fn isolated(suffix: &str) -> Settings {
    let mut s = settings("eu");
    s.cassandra.keyspace = format!("{}_{suffix}", common::KEYSPACE.as_str());
    s.cassandra.auto_migrate = false;
    s
}

fn with_auto_migrate(s: &Settings) -> Settings {
    let mut s = s.clone();
    s.cassandra.auto_migrate = true;
    s
}

async fn session_of(s: &Settings) -> Session {
    let store = Store::connect(&with_auto_migrate(s).cassandra)
        .await
        .expect("connect and migrate");
    // The store's session is shared; hand back an independent one for raw statements.
    drop(store);
    scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&s.cassandra.hosts)
        .build()
        .await
        .expect("a raw session")
}

async fn drop_keyspace(session: &Session, s: &Settings) {
    let _ = session
        .query_unpaged(
            format!("DROP KEYSPACE IF EXISTS {}", s.cassandra.keyspace),
            (),
        )
        .await;
}

async fn tables(session: &Session, keyspace: &str) -> BTreeSet<String> {
    session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(String,)>()
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect()
}

/// Builds the origin as the binary does; the error text if it refuses.
async fn refusal(s: Settings) -> String {
    match Application::build(s).await {
        Ok(_) => panic!("the origin started against a schema it should refuse"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn racing_migrate_runs_end_with_one_schema_and_no_error() {
    let s = isolated("mig_race");
    // Two `origin migrate` jobs and an origin with auto-migrate, all at once on no keyspace.
    let auto = with_auto_migrate(&s);
    let (a, b, c) = tokio::join!(
        migrate::run(&s),
        migrate::run(&s),
        Store::connect(&auto.cassandra)
    );
    let (a, b) = (a.expect("first run"), b.expect("second run"));
    c.expect("an auto-migrating origin racing them");
    let known: Vec<String> = migrate::known().iter().map(|m| m.label()).collect();
    let latest = migrate::latest_version();
    assert_eq!((a.version, b.version), (latest, latest));
    // Each version applied by exactly one of the runs (the third is not reported here).
    for label in &a.applied {
        assert!(!b.applied.contains(label), "{label} applied twice");
    }

    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&s.cassandra.hosts)
        .build()
        .await
        .unwrap();
    let applied = migrate::applied(&session, &s.cassandra).await.unwrap();
    assert_eq!(
        applied
            .iter()
            .map(|a| format!("{:04}_{}", a.version, a.name))
            .collect::<Vec<_>>(),
        known,
        "one row per version"
    );
    assert!(applied.iter().all(|a| !a.applied_by.is_empty()));
    let tables = tables(&session, &s.cassandra.keyspace).await;
    for table in [
        "games",
        "active_game_by_user",
        "game_by_idempotency_key",
        "outbox_pending",
        "outbox_floor",
        "regions",
        "region_status",
        MIGRATIONS_TABLE,
    ] {
        assert!(tables.contains(table), "{table} missing: {tables:?}");
    }
    // The lock was released.
    let held = session
        .query_unpaged(
            format!(
                "SELECT owner FROM {}.schema_migrations_lock",
                s.cassandra.keyspace
            ),
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num();
    assert_eq!(held, 0);
    // A serving origin (checking only) accepts it, and one more run has nothing to do.
    Store::connect(&s.cassandra)
        .await
        .expect("a checking origin accepts the migrated schema");
    let again = migrate::run(&s).await.unwrap();
    assert!(again.applied.is_empty(), "{again}");
    assert!(again.to_string().contains("nothing to apply"));
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn an_origin_refuses_a_schema_newer_than_it_knows() {
    let s = isolated("mig_newer");
    let session = session_of(&s).await;
    let future = migrate::latest_version() + 1;
    session
        .query_unpaged(
            format!(
                "INSERT INTO {}.{MIGRATIONS_TABLE} (version, name, checksum) VALUES (?, 'from_the_future', 'x')",
                s.cassandra.keyspace
            ),
            (future,),
        )
        .await
        .unwrap();
    let message = refusal(s.clone()).await;
    let newest_known = migrate::known().last().unwrap().label();
    assert!(
        message.contains(&format!("{future:04}_from_the_future")),
        "{message}"
    );
    assert!(message.contains(&newest_known), "{message}");
    // `origin migrate` of this binary refuses it too (it never downgrades).
    let error = migrate::run(&s).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("{future:04}_from_the_future")),
        "{error}"
    );
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn an_origin_refuses_a_missing_or_pending_schema_without_auto_migrate() {
    let s = isolated("mig_missing");
    // No keyspace at all.
    let message = refusal(s.clone()).await;
    assert!(message.contains("origin migrate"), "{message}");
    assert!(message.contains("schema_migrations"), "{message}");

    // Migrated, then the newest version's record removed: pending, named.
    let session = session_of(&s).await;
    let newest = migrate::known().last().unwrap().clone();
    session
        .query_unpaged(
            format!(
                "DELETE FROM {}.{MIGRATIONS_TABLE} WHERE version = ?",
                s.cassandra.keyspace
            ),
            (newest.version,),
        )
        .await
        .unwrap();
    let message = refusal(s.clone()).await;
    assert!(message.contains(&newest.label()), "{message}");
    assert!(message.contains("origin migrate"), "{message}");
    // `origin migrate` applies it again (its statements are idempotent).
    let report = migrate::run(&s).await.unwrap();
    assert_eq!(report.applied, [newest.label()]);
    Store::connect(&s.cassandra).await.unwrap();
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn an_edited_applied_migration_is_reported() {
    let s = isolated("mig_checksum");
    let session = session_of(&s).await;
    session
        .query_unpaged(
            format!(
                "UPDATE {}.{MIGRATIONS_TABLE} SET checksum = 'edited' WHERE version = 2",
                s.cassandra.keyspace
            ),
            (),
        )
        .await
        .unwrap();
    let label = migrate::known()[1].label();
    let error = migrate::run(&s).await.unwrap_err().to_string();
    assert!(
        error.contains(&label) && error.contains("checksum"),
        "{error}"
    );
    let message = refusal(s.clone()).await;
    assert!(
        message.contains(&label) && message.contains("checksum"),
        "{message}"
    );
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn a_keyspace_made_before_versioning_is_adopted() {
    let s = isolated("mig_adopt");
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&s.cassandra.hosts)
        .build()
        .await
        .unwrap();
    let ks = &s.cassandra.keyspace;
    // What origins before versioning created at boot (games with its added column already).
    for ddl in [
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {}",
            s.cassandra.replication.cql()
        ),
        format!(
            "CREATE TABLE {ks}.games (game_id uuid PRIMARY KEY, user_id text, region text, \
             seed bigint, start_at timestamp, tick_ms int, break_every int, algorithm text, \
             status text, created_at timestamp, exited_at timestamp, metadata text, owner_key text)"
        ),
        format!(
            "CREATE TABLE {ks}.regions (name text PRIMARY KEY, url text, version text, \
             in_flight int, p99_ms int, starts_per_sec double, heartbeat_at timestamp)"
        ),
    ] {
        session.query_unpaged(ddl, ()).await.unwrap();
    }
    let report = migrate::run(&s).await.expect("adopt the old keyspace");
    assert_eq!(report.applied.len(), migrate::known().len());
    Store::connect(&s.cassandra).await.unwrap();
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn a_replication_change_is_explicit() {
    let s = isolated("mig_repl");
    let session = session_of(&s).await;
    // SimpleStrategy to NetworkTopologyStrategy in the node's own datacenter (one node: a
    // factor above 1 could not answer LOCAL_QUORUM afterwards).
    let (dc,): (String,) = session
        .query_unpaged("SELECT data_center FROM system.local", ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    let mut changed = s.clone();
    changed.cassandra.replication = Replication::NetworkTopology(vec![(dc.clone(), 1)]);
    let error = migrate::run(&changed).await.unwrap_err().to_string();
    assert!(error.contains("CASSANDRA_REPLICATION"), "{error}");
    assert!(error.contains("ALTER KEYSPACE"), "{error}");
    // Serving origins only warn: the keyspace's replication is the operator's decision.
    Store::connect(&changed.cassandra).await.unwrap();
    // Changed on request, and said so (with the repair to run).
    let report = migrate::run_with(
        &changed,
        migrate::Options {
            alter_replication: true,
        },
    )
    .await
    .unwrap();
    assert!(report.replication_changed.is_some());
    assert!(report.to_string().contains("nodetool repair"), "{report}");
    let factor: std::collections::BTreeMap<String, String> = session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (s.cassandra.keyspace.as_str(),),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<(std::collections::BTreeMap<String, String>,)>()
        .unwrap()
        .0;
    assert!(
        factor["class"].ends_with("NetworkTopologyStrategy"),
        "{factor:?}"
    );
    assert_eq!(factor[&dc], "1");
    let again = migrate::run(&changed).await.unwrap();
    assert!(again.replication_changed.is_none() && again.applied.is_empty());
    drop_keyspace(&session, &s).await;
}

#[tokio::test]
async fn a_crashed_migrators_lock_expires() {
    let s = isolated("mig_lock");
    let session = session_of(&s).await;
    // A lock left by a migrator that died: it lives 3 s more.
    session
        .query_unpaged(
            format!(
                "INSERT INTO {}.schema_migrations_lock (name, owner) VALUES ('migrate', 'crashed') USING TTL 3",
                s.cassandra.keyspace
            ),
            (),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(60), migrate::run(&s))
        .await
        .expect("the run takes the lock once it expires")
        .unwrap();
    assert!(report.applied.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the run waited for the lock"
    );
    drop_keyspace(&session, &s).await;
}

#[test]
fn compose_migrates_once_before_the_origins_start() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker-compose.yml"
    ))
    .expect("docker-compose.yml");
    let mut compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    let migrate = &compose["services"]["migrate"];
    assert_eq!(migrate["command"][0].as_str(), Some("migrate"));
    assert_eq!(migrate["restart"].as_str(), Some("no"));
    for region in ["eu", "us", "asia"] {
        let origin = &compose["services"][format!("origin-{region}").as_str()];
        assert_eq!(
            origin["depends_on"]["migrate"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "origin-{region} waits for the migration"
        );
        // Production origins only check the schema (SCHEMA_AUTO_MIGRATE defaults to false).
        assert_eq!(
            origin["environment"]["SEEDSYNC_ENV"].as_str(),
            Some("production")
        );
        assert!(origin["environment"]["SCHEMA_AUTO_MIGRATE"].is_null());
    }
}
