//! The versioned schema: the CQL files of `origin/migrations/` (embedded in the binary), the
//! `schema_migrations` record of which of them a keyspace has, and `origin migrate`, which
//! applies the missing ones under a lock.
//!
//! Serving origins do not change the schema unless [`CassandraSettings::auto_migrate`] says so
//! (`SCHEMA_AUTO_MIGRATE`, on in development, off in production): they only [`check`] that
//! the keyspace holds exactly the versions this binary knows, and refuse to start otherwise
//! with a message naming the versions. So the application's Cassandra role needs no DDL rights,
//! an old binary never runs against a newer schema, and origins starting together never race
//! on DDL.
//!
//! Concurrent `origin migrate` runs (two deploy jobs, or origins with auto-migrate starting
//! together) are serialized by a lock row taken with an LWT (`INSERT ... IF NOT EXISTS USING
//! TTL`): the holder renews it after each migration; a crashed holder's row expires by itself.
//! Each applied version is then recorded with an LWT of its own, and every statement of a
//! migration is idempotent (`IF NOT EXISTS`), so a run cut short is simply run again.
//!
//! The keyspace's replication is never changed implicitly: `migrate` creates the keyspace with
//! `CASSANDRA_REPLICATION` when missing, and refuses (saying how to change it) when an existing
//! keyspace replicates differently, unless asked to change it (`--alter-replication`). Serving
//! origins only warn about such a difference.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::statement::unprepared::Statement;
use scylla::value::CqlTimestamp;
use sha2::{Digest, Sha256};

use super::{CassandraSettings, Replication, StoreChoice, StoreError, open_session};
use crate::config::Settings;

/// The migration files, in version order. Adding one: a new file `NNNN_name.cql` in
/// `origin/migrations/` and a line here (a unit test checks the two agree).
const FILES: [(&str, &str); 9] = [
    (
        "0001_initial.cql",
        include_str!("../../migrations/0001_initial.cql"),
    ),
    (
        "0002_games_owner_key.cql",
        include_str!("../../migrations/0002_games_owner_key.cql"),
    ),
    (
        "0003_regions_signature.cql",
        include_str!("../../migrations/0003_regions_signature.cql"),
    ),
    (
        "0004_shared_games.cql",
        include_str!("../../migrations/0004_shared_games.cql"),
    ),
    (
        "0005_runtime_settings.cql",
        include_str!("../../migrations/0005_runtime_settings.cql"),
    ),
    (
        "0006_games_sealed.cql",
        include_str!("../../migrations/0006_games_sealed.cql"),
    ),
    (
        "0007_leaderboard.cql",
        include_str!("../../migrations/0007_leaderboard.cql"),
    ),
    (
        "0008_tournaments.cql",
        include_str!("../../migrations/0008_tournaments.cql"),
    ),
    (
        "0009_tournaments_sealed.cql",
        include_str!("../../migrations/0009_tournaments_sealed.cql"),
    ),
];

/// The table recording applied migrations.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// The table holding the migration lock's single row.
const LOCK_TABLE: &str = "schema_migrations_lock";

/// How long a lock row lives unless renewed: a crashed migrator blocks others at most this long.
const LOCK_TTL_SECONDS: i32 = 60;

/// How long a run waits for another run's lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// One versioned schema change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The number its file name starts with; applied in increasing order.
    pub version: i32,
    /// The file name without the number and `.cql` (`initial`).
    pub name: String,
    /// The file's text.
    pub cql: &'static str,
}

impl Migration {
    /// `NNNN_name`, as operators see it in `origin/migrations/`.
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }

    /// The SHA-256 of the file's text (hex), recorded when applied: a released migration
    /// edited afterwards no longer matches.
    pub fn checksum(&self) -> String {
        checksum(self.cql)
    }

    /// The CQL statements of the file.
    pub fn statements(&self) -> Vec<String> {
        statements(self.cql)
    }
}

/// The SHA-256 (hex) of a migration's text, line endings normalized so a checkout with CRLF
/// gives the same sum.
pub fn checksum(cql: &str) -> String {
    let digest = Sha256::digest(cql.replace("\r\n", "\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a migration's text into statements: `--` comment lines are dropped, and a statement
/// ends with a `;` at the end of a line.
pub fn statements(cql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in cql.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("--") {
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line);
        if let Some(statement) = current.strip_suffix(';') {
            statements.push(statement.trim().to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

/// Parses `NNNN_name.cql` into its version and name.
pub fn parse_file_name(file: &str) -> Result<(i32, String), String> {
    let stem = file
        .strip_suffix(".cql")
        .ok_or_else(|| format!("{file}: a migration file ends with .cql"))?;
    let (number, name) = stem
        .split_once('_')
        .ok_or_else(|| format!("{file}: expected NNNN_name.cql"))?;
    let version = match number.parse::<i32>() {
        Ok(v) if v > 0 && number.chars().all(|c| c.is_ascii_digit()) => v,
        _ => {
            return Err(format!(
                "{file}: {number:?} is not a positive version number"
            ));
        }
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "{file}: the name must be lowercase letters, digits or '_'"
        ));
    }
    Ok((version, name.to_owned()))
}

/// Orders migration files by version; versions must be 1, 2, 3, ... with none repeated or
/// skipped (a gap is usually a file forgotten in a merge).
pub fn ordered(files: &[(&str, &'static str)]) -> Result<Vec<Migration>, String> {
    let mut migrations = files
        .iter()
        .map(|(file, cql)| {
            let (version, name) = parse_file_name(file)?;
            Ok(Migration { version, name, cql })
        })
        .collect::<Result<Vec<_>, String>>()?;
    migrations.sort_by_key(|m| m.version);
    for (expected, migration) in (1..).zip(&migrations) {
        if migration.version != expected {
            return Err(format!(
                "migration versions must run 1, 2, 3, ...: expected {expected}, found {}",
                migration.label()
            ));
        }
        if migration.statements().is_empty() {
            return Err(format!("{} has no statement", migration.label()));
        }
    }
    Ok(migrations)
}

/// The migrations this binary knows, in order.
pub fn known() -> Vec<Migration> {
    ordered(&FILES).expect("the embedded migrations are valid (unit-tested)")
}

/// The newest version this binary knows.
pub fn latest_version() -> i32 {
    known().last().map_or(0, |m| m.version)
}

/// A row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The migration's version.
    pub version: i32,
    /// Its name when applied.
    pub name: String,
    /// Its checksum when applied.
    pub checksum: String,
    /// When (ms since the epoch).
    pub applied_at_ms: i64,
    /// Which process applied it (host, pid, origin version).
    pub applied_by: String,
}

/// How a keyspace's recorded migrations compare with the ones this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every known migration is applied, nothing else: the schema is at this version.
    Current(i32),
    /// Nothing recorded (`schema_migrations` missing or empty).
    Missing,
    /// These known migrations are not applied yet (labels, in order).
    Pending(Vec<String>),
    /// The keyspace has a version this binary does not know (a newer origin migrated it).
    TooNew {
        /// The newest applied version (with its name).
        applied: String,
        /// The newest version this binary knows (with its name).
        known: String,
    },
    /// An applied migration's recorded checksum differs from this binary's file.
    ChecksumMismatch {
        /// The migration.
        migration: String,
        /// The recorded checksum.
        recorded: String,
        /// This binary's.
        expected: String,
    },
}

/// Compares the applied migrations with the known ones (pure; [`check`] and [`apply`] act on
/// it). A newer schema and an edited migration take precedence over pending ones.
pub fn compare(known: &[Migration], applied: &[Applied]) -> SchemaState {
    if applied.is_empty() {
        return SchemaState::Missing;
    }
    let newest_known = known.last();
    let newest_applied = applied.iter().max_by_key(|a| a.version);
    if let Some(newest) = newest_applied
        && newest.version > newest_known.map_or(0, |m| m.version)
    {
        return SchemaState::TooNew {
            applied: format!("{:04}_{}", newest.version, newest.name),
            known: newest_known.map_or_else(|| "none".to_owned(), Migration::label),
        };
    }
    let by_version: BTreeMap<i32, &Applied> = applied.iter().map(|a| (a.version, a)).collect();
    for migration in known {
        if let Some(record) = by_version.get(&migration.version)
            && record.checksum != migration.checksum()
        {
            return SchemaState::ChecksumMismatch {
                migration: migration.label(),
                recorded: record.checksum.clone(),
                expected: migration.checksum(),
            };
        }
    }
    let pending: Vec<String> = known
        .iter()
        .filter(|m| !by_version.contains_key(&m.version))
        .map(Migration::label)
        .collect();
    if pending.is_empty() {
        SchemaState::Current(newest_known.map_or(0, |m| m.version))
    } else {
        SchemaState::Pending(pending)
    }
}

impl SchemaState {
    /// Why a serving origin refuses this state (None: it may serve).
    pub fn refusal(&self) -> Option<String> {
        match self {
            SchemaState::Current(_) => None,
            SchemaState::Missing => Some(
                "no schema version recorded (table schema_migrations missing or empty): \
                 run `origin migrate` first (or SCHEMA_AUTO_MIGRATE=true in development)"
                    .to_owned(),
            ),
            SchemaState::Pending(pending) => Some(format!(
                "schema migrations pending: {}; run `origin migrate` (with this origin's image) \
                 before starting it",
                pending.join(", ")
            )),
            SchemaState::TooNew { applied, known } => Some(format!(
                "the keyspace's schema is at version {applied}, newer than this origin knows \
                 (up to {known}): deploy an origin that knows {applied}; an older origin must \
                 not run against a newer schema"
            )),
            SchemaState::ChecksumMismatch {
                migration,
                recorded,
                expected,
            } => Some(format!(
                "migration {migration} was applied with checksum {recorded}, but this origin's \
                 file has {expected}: a released migration was edited; restore its text and put \
                 the change into a new migration"
            )),
        }
    }
}

/// Whether the replication Cassandra reports (`system_schema.keyspaces.replication`) is the
/// one `wanted` describes. Class names may be short or qualified; factors compare as numbers.
pub fn replication_matches(actual: &BTreeMap<String, String>, wanted: &Replication) -> bool {
    let class = actual
        .get("class")
        .map(|c| c.rsplit('.').next().unwrap_or(c).to_owned())
        .unwrap_or_default();
    let factors: BTreeMap<&str, Option<u32>> = actual
        .iter()
        .filter(|(k, _)| k.as_str() != "class")
        .map(|(k, v)| (k.as_str(), v.trim().parse::<u32>().ok()))
        .collect();
    match wanted {
        Replication::Simple(rf) => {
            class == "SimpleStrategy"
                && factors.len() == 1
                && factors.get("replication_factor") == Some(&Some(*rf))
        }
        Replication::NetworkTopology(dcs) => {
            class == "NetworkTopologyStrategy"
                && factors.len() == dcs.len()
                && dcs
                    .iter()
                    .all(|(dc, rf)| factors.get(dc.as_str()) == Some(&Some(*rf)))
        }
    }
}

fn schema_error(keyspace: &str) -> impl Fn(&dyn fmt::Display) -> StoreError + '_ {
    move |e| StoreError::Schema {
        keyspace: keyspace.to_owned(),
        message: e.to_string(),
    }
}

fn version_error(keyspace: &str, message: String) -> StoreError {
    StoreError::SchemaVersion {
        keyspace: keyspace.to_owned(),
        message,
    }
}

/// The keyspace's replication as Cassandra reports it, if the keyspace exists.
async fn keyspace_replication(
    session: &Session,
    keyspace: &str,
) -> Result<Option<BTreeMap<String, String>>, StoreError> {
    let rows = session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(|e| schema_error(keyspace)(&e))?
        .into_rows_result()
        .map_err(|e| schema_error(keyspace)(&e))?;
    let row = rows
        .maybe_first_row::<(BTreeMap<String, String>,)>()
        .map_err(|e| schema_error(keyspace)(&e))?;
    Ok(row.map(|(replication,)| replication))
}

fn show_replication(replication: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = replication
        .iter()
        .map(|(k, v)| format!("'{k}': '{v}'"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Why the keyspace's replication differs from `CASSANDRA_REPLICATION`, if it does.
async fn replication_difference(
    session: &Session,
    settings: &CassandraSettings,
) -> Result<Option<String>, StoreError> {
    let ks = &settings.keyspace;
    let Some(actual) = keyspace_replication(session, ks).await? else {
        return Ok(None);
    };
    if replication_matches(&actual, &settings.replication) {
        return Ok(None);
    }
    Ok(Some(format!(
        "keyspace {ks} replicates as {}, but CASSANDRA_REPLICATION asks for {}. Replication is \
         never changed implicitly: either set CASSANDRA_REPLICATION to the keyspace's value, or \
         change it with `origin migrate --alter-replication` (or `ALTER KEYSPACE {ks} WITH \
         replication = {}` in cqlsh), then run `nodetool repair -full {ks}` on every node (see \
         docs/operations.md, \"Schema migrations\")",
        show_replication(&actual),
        settings.replication.cql(),
        settings.replication.cql(),
    )))
}

/// Whether `keyspace.table` exists.
async fn table_exists(session: &Session, keyspace: &str, table: &str) -> Result<bool, StoreError> {
    let rows = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await
        .map_err(|e| schema_error(keyspace)(&e))?
        .into_rows_result()
        .map_err(|e| schema_error(keyspace)(&e))?;
    Ok(rows.rows_num() > 0)
}

/// The rows of `schema_migrations` (none if the table is missing), read at the serial
/// consistency of `settings`: linearizable with the LWTs that record them, so an origin in
/// another datacenter right after `origin migrate` sees what it applied.
pub async fn applied(
    session: &Session,
    settings: &CassandraSettings,
) -> Result<Vec<Applied>, StoreError> {
    let keyspace = settings.keyspace.as_str();
    if !table_exists(session, keyspace, MIGRATIONS_TABLE).await? {
        return Ok(Vec::new());
    }
    let mut select = Statement::new(format!(
        "SELECT version, name, checksum, applied_at, applied_by FROM {keyspace}.{MIGRATIONS_TABLE}"
    ));
    select.set_consistency(match settings.serial_consistency {
        SerialConsistency::Serial => Consistency::Serial,
        SerialConsistency::LocalSerial => Consistency::LocalSerial,
    });
    let rows = session
        .query_unpaged(select, ())
        .await
        .map_err(|e| schema_error(keyspace)(&e))?
        .into_rows_result()
        .map_err(|e| schema_error(keyspace)(&e))?;
    type Row = (
        i32,
        Option<String>,
        Option<String>,
        Option<CqlTimestamp>,
        Option<String>,
    );
    let mut applied = Vec::new();
    for row in rows.rows::<Row>().map_err(|e| schema_error(keyspace)(&e))? {
        let (version, name, checksum, at, by) = row.map_err(|e| schema_error(keyspace)(&e))?;
        applied.push(Applied {
            version,
            name: name.unwrap_or_default(),
            checksum: checksum.unwrap_or_default(),
            applied_at_ms: at.map_or(0, |t| t.0),
            applied_by: by.unwrap_or_default(),
        });
    }
    applied.sort_by_key(|a| a.version);
    Ok(applied)
}

/// A serving origin's check: the keyspace must be at exactly this binary's version (see
/// [`SchemaState::refusal`]). A replication different from `CASSANDRA_REPLICATION` is logged.
pub async fn check(session: &Session, settings: &CassandraSettings) -> Result<i32, StoreError> {
    let ks = &settings.keyspace;
    let state = compare(&known(), &applied(session, settings).await?);
    if let Some(refusal) = state.refusal() {
        return Err(version_error(ks, refusal));
    }
    if let Some(difference) = replication_difference(session, settings).await? {
        tracing::warn!("{difference}");
    }
    Ok(latest_version())
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The keyspace.
    pub keyspace: String,
    /// The migrations this run applied (labels, in order); empty if it was current.
    pub applied: Vec<String>,
    /// The schema version afterwards.
    pub version: i32,
    /// The replication the keyspace was changed to (`--alter-replication`), if it was.
    pub replication_changed: Option<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(replication) = &self.replication_changed {
            write!(
                f,
                "replication of keyspace {} changed to {replication}: now run `nodetool repair \
                 -full {}` on every node (and `nodetool cleanup` where a factor went down); ",
                self.keyspace, self.keyspace
            )?;
        }
        if self.applied.is_empty() {
            write!(
                f,
                "keyspace {} is at schema version {}; nothing to apply",
                self.keyspace, self.version
            )
        } else {
            write!(
                f,
                "keyspace {}: applied {}; now at schema version {}",
                self.keyspace,
                self.applied.join(", "),
                self.version
            )
        }
    }
}

/// Who is migrating, for the lock row and `applied_by`.
fn migrator_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let mut nonce = [0u8; 4];
    let _ = getrandom::fill(&mut nonce);
    format!(
        "{host} pid {} origin {} #{:08x}",
        std::process::id(),
        env!("CARGO_PKG_VERSION"),
        u32::from_be_bytes(nonce)
    )
}

/// Runs DDL, retrying a few times (a node may still be settling a concurrent change).
async fn ddl(session: &Session, keyspace: &str, statement: &str) -> Result<(), StoreError> {
    let mut attempt = 0u64;
    loop {
        match session.query_unpaged(statement, ()).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, statement, "schema statement failed; retrying");
                session
                    .await_schema_agreement()
                    .await
                    .map_err(|e| schema_error(keyspace)(&e))?;
                tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
            }
            Err(e) => {
                return Err(schema_error(keyspace)(&format!("{e} in `{statement}`")));
            }
        }
    }
}

/// The lock held by one run; renewed after each migration, released at the end.
struct Lock<'a> {
    session: &'a Session,
    keyspace: &'a str,
    owner: String,
}

impl<'a> Lock<'a> {
    /// Waits until this run holds the lock (another run's lock is released or expires).
    async fn acquire(session: &'a Session, keyspace: &'a str) -> Result<Lock<'a>, StoreError> {
        let owner = migrator_id();
        let started = tokio::time::Instant::now();
        let mut announced = false;
        loop {
            let result = session
                .query_unpaged(
                    format!(
                        "INSERT INTO {keyspace}.{LOCK_TABLE} (name, owner, acquired_at) \
                         VALUES ('migrate', ?, ?) IF NOT EXISTS USING TTL ?"
                    ),
                    (
                        owner.as_str(),
                        CqlTimestamp(kernel::clock::now_ms()),
                        LOCK_TTL_SECONDS,
                    ),
                )
                .await;
            let holder = match result {
                Ok(result) => {
                    let (applied, values) =
                        super::lwt::lwt_outcome(result, &["owner"], "take migration lock")?;
                    let holder = values
                        .into_iter()
                        .next()
                        .flatten()
                        .and_then(|v| v.into_string());
                    // A repeat of our own applied insert reports our row.
                    if applied || holder.as_deref() == Some(owner.as_str()) {
                        return Ok(Lock {
                            session,
                            keyspace,
                            owner,
                        });
                    }
                    holder.unwrap_or_default()
                }
                // Unknown outcome (contention, timeout): look again.
                Err(error) if super::lwt::worth_retrying(&error) => {
                    tracing::warn!(%error, "taking the migration lock failed; trying again");
                    String::new()
                }
                Err(error) => return Err(super::query_error("take migration lock")(&error)),
            };
            if started.elapsed() > LOCK_WAIT {
                return Err(version_error(
                    keyspace,
                    format!(
                        "the migration lock is still held by {holder:?} after {} s; if that \
                         migrator crashed, its lock expires {LOCK_TTL_SECONDS} s after its last \
                         renewal",
                        LOCK_WAIT.as_secs()
                    ),
                ));
            }
            if !announced && !holder.is_empty() {
                tracing::info!(%holder, "waiting for another schema migration to finish");
                announced = true;
            }
            let mut jitter = [0u8; 1];
            let _ = getrandom::fill(&mut jitter);
            tokio::time::sleep(Duration::from_millis(250 + u64::from(jitter[0]))).await;
        }
    }

    /// Extends the lock; fails if it expired and another run took it.
    async fn renew(&self) -> Result<(), StoreError> {
        let result = self
            .session
            .query_unpaged(
                format!(
                    "UPDATE {}.{LOCK_TABLE} USING TTL ? SET owner = ?, acquired_at = ? \
                     WHERE name = 'migrate' IF owner = ?",
                    self.keyspace
                ),
                (
                    LOCK_TTL_SECONDS,
                    self.owner.as_str(),
                    CqlTimestamp(kernel::clock::now_ms()),
                    self.owner.as_str(),
                ),
            )
            .await
            .map_err(|e| super::query_error("renew migration lock")(&e))?;
        let (applied, _) = super::lwt::lwt_outcome(result, &[], "renew migration lock")?;
        if applied {
            Ok(())
        } else {
            Err(version_error(
                self.keyspace,
                format!(
                    "lost the migration lock (it expired after {LOCK_TTL_SECONDS} s without \
                     renewal); run `origin migrate` again"
                ),
            ))
        }
    }

    async fn release(self) {
        let released = self
            .session
            .query_unpaged(
                format!(
                    "DELETE FROM {}.{LOCK_TABLE} WHERE name = 'migrate' IF owner = ?",
                    self.keyspace
                ),
                (self.owner.as_str(),),
            )
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "releasing the migration lock failed; it expires by itself");
        }
    }
}

/// What a run may do beyond applying migrations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `origin migrate --alter-replication`: when the keyspace replicates differently from
    /// `CASSANDRA_REPLICATION`, change it (`ALTER KEYSPACE`) instead of refusing. A repair
    /// must follow (the report says so).
    pub alter_replication: bool,
}

/// Applies the pending migrations of `settings.keyspace` (creating the keyspace with
/// `CASSANDRA_REPLICATION` and the bookkeeping tables if missing), under the lock; refuses a
/// keyspace whose replication differs from `CASSANDRA_REPLICATION`.
pub async fn apply(session: &Session, settings: &CassandraSettings) -> Result<Report, StoreError> {
    apply_with(session, settings, Options::default()).await
}

/// [`apply`] with [`Options`].
pub async fn apply_with(
    session: &Session,
    settings: &CassandraSettings,
    options: Options,
) -> Result<Report, StoreError> {
    let ks = settings.keyspace.as_str();
    ddl(
        session,
        ks,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
            settings.replication.cql()
        ),
    )
    .await?;
    if !options.alter_replication
        && let Some(difference) = replication_difference(session, settings).await?
    {
        return Err(version_error(ks, difference));
    }
    ddl(
        session,
        ks,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{MIGRATIONS_TABLE} (version int PRIMARY KEY, \
             name text, checksum text, applied_at timestamp, applied_by text)"
        ),
    )
    .await?;
    ddl(
        session,
        ks,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{LOCK_TABLE} (name text PRIMARY KEY, owner text, \
             acquired_at timestamp)"
        ),
    )
    .await?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| schema_error(ks)(&e))?;
    let lock = Lock::acquire(session, ks).await?;
    let outcome = async {
        let mut replication = None;
        if options.alter_replication
            && replication_difference(session, settings).await?.is_some()
        {
            let wanted = settings.replication.cql();
            ddl(
                session,
                ks,
                &format!("ALTER KEYSPACE {ks} WITH replication = {wanted}"),
            )
            .await?;
            session
                .await_schema_agreement()
                .await
                .map_err(|e| schema_error(ks)(&e))?;
            tracing::warn!(keyspace = ks, replication = %wanted, "keyspace replication changed; run a full repair");
            replication = Some(wanted);
        }
        let mut report = apply_locked(session, settings, &lock).await?;
        report.replication_changed = replication;
        Ok(report)
    }
    .await;
    lock.release().await;
    outcome
}

async fn apply_locked(
    session: &Session,
    settings: &CassandraSettings,
    lock: &Lock<'_>,
) -> Result<Report, StoreError> {
    let ks = settings.keyspace.as_str();
    let known = known();
    // Read after taking the lock: a run that held it before may have applied everything.
    let state = compare(&known, &applied(session, settings).await?);
    let pending: Vec<&Migration> = match &state {
        SchemaState::Current(_) => Vec::new(),
        SchemaState::Missing => known.iter().collect(),
        SchemaState::Pending(labels) => known
            .iter()
            .filter(|m| labels.contains(&m.label()))
            .collect(),
        SchemaState::TooNew { .. } | SchemaState::ChecksumMismatch { .. } => {
            let refusal = state.refusal().unwrap_or_default();
            return Err(version_error(ks, refusal));
        }
    };
    // The file's unqualified table names are this keyspace's.
    session
        .use_keyspace(ks, false)
        .await
        .map_err(|e| schema_error(ks)(&e))?;
    let by = migrator_id();
    let mut done = Vec::new();
    for migration in pending {
        tracing::info!(migration = %migration.label(), keyspace = ks, "applying schema migration");
        for statement in migration.statements() {
            ddl(session, ks, &statement).await.map_err(|e| match e {
                StoreError::Schema { keyspace, message } => StoreError::Schema {
                    keyspace,
                    message: format!("migration {}: {message}", migration.label()),
                },
                other => other,
            })?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| schema_error(ks)(&e))?;
        let result = session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.{MIGRATIONS_TABLE} (version, name, checksum, applied_at, \
                     applied_by) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
                ),
                (
                    migration.version,
                    migration.name.as_str(),
                    migration.checksum(),
                    CqlTimestamp(kernel::clock::now_ms()),
                    by.as_str(),
                ),
            )
            .await
            .map_err(|e| super::query_error("record schema migration")(&e))?;
        let (recorded, values) =
            super::lwt::lwt_outcome(result, &["checksum"], "record schema migration")?;
        let existing = values
            .into_iter()
            .next()
            .flatten()
            .and_then(|v| v.into_string());
        if !recorded && existing.as_deref() != Some(migration.checksum().as_str()) {
            return Err(version_error(
                ks,
                format!(
                    "migration {} was recorded meanwhile with checksum {:?} (expected {})",
                    migration.label(),
                    existing.unwrap_or_default(),
                    migration.checksum()
                ),
            ));
        }
        done.push(migration.label());
        lock.renew().await?;
    }
    Ok(Report {
        keyspace: ks.to_owned(),
        applied: done,
        version: latest_version(),
        replication_changed: None,
    })
}

/// `origin migrate`'s work: connects (retrying like a serving origin while Cassandra starts)
/// and applies the pending migrations.
pub async fn run(settings: &Settings) -> Result<Report, StoreError> {
    run_with(settings, Options::default()).await
}

/// [`run`] with [`Options`].
pub async fn run_with(settings: &Settings, options: Options) -> Result<Report, StoreError> {
    let retries = match settings.store {
        StoreChoice::Cassandra { retries } => retries,
        StoreChoice::Memory => 0,
    };
    let mut attempt = 0;
    let session = loop {
        match open_session(&settings.cassandra).await {
            Ok(session) => break session,
            Err(error) if attempt < retries => {
                attempt += 1;
                tracing::warn!(%error, attempt, "Cassandra not reachable yet; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error),
        }
    };
    apply_with(&session, &settings.cassandra, options).await
}

/// The options of `origin migrate [--alter-replication]` (the arguments after `migrate`).
pub fn parse_options<S: AsRef<str>>(args: &[S]) -> Result<Options, String> {
    let mut options = Options::default();
    for arg in args {
        match arg.as_ref() {
            "--alter-replication" => options.alter_replication = true,
            other => {
                return Err(format!(
                    "unknown option {other:?}; usage: origin migrate [--alter-replication]"
                ));
            }
        }
    }
    Ok(options)
}

/// `origin migrate` for `main` (its options parsed by [`crate::cli`]): runs [`run_with`],
/// prints what happened, and exits 0 or 1 (failed).
pub async fn command(settings: &Settings, options: Options) -> ExitCode {
    match run_with(settings, options).await {
        Ok(report) => {
            println!("origin migrate: {report}");
            tracing::info!(%report, "schema migrated");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("origin migrate: {error}");
            tracing::error!(%error, "schema migration failed");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i32, name: &str, cql: &str) -> Applied {
        Applied {
            version,
            name: name.to_owned(),
            checksum: checksum(cql),
            applied_at_ms: 0,
            applied_by: "test".to_owned(),
        }
    }

    fn all_applied() -> Vec<Applied> {
        known()
            .iter()
            .map(|m| applied(m.version, &m.name, m.cql))
            .collect()
    }

    #[test]
    fn embedded_files_match_the_directory_and_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".cql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, embedded, "every migration file is listed in FILES");
        let known = known();
        assert_eq!(
            known.iter().map(|m| m.version).collect::<Vec<_>>(),
            (1..=FILES.len() as i32).collect::<Vec<_>>()
        );
        assert_eq!(known[0].label(), "0001_initial");
    }

    #[test]
    fn file_names_parse_and_order() {
        assert_eq!(
            parse_file_name("0012_add_x.cql").unwrap(),
            (12, "add_x".to_owned())
        );
        assert!(parse_file_name("0001_initial.sql").is_err());
        assert!(parse_file_name("initial.cql").is_err());
        assert!(parse_file_name("0000_zero.cql").is_err());
        assert!(parse_file_name("-1_neg.cql").is_err());
        assert!(parse_file_name("0001_Bad-Name.cql").is_err());
        let sorted = ordered(&[("0002_b.cql", "B;"), ("0001_a.cql", "A;")]).unwrap();
        assert_eq!(
            sorted.iter().map(Migration::label).collect::<Vec<_>>(),
            ["0001_a", "0002_b"]
        );
        assert!(ordered(&[("0001_a.cql", "A;"), ("0003_c.cql", "C;")]).is_err());
        assert!(ordered(&[("0001_a.cql", "A;"), ("0001_b.cql", "B;")]).is_err());
        assert!(ordered(&[("0001_a.cql", "-- only a comment\n")]).is_err());
    }

    #[test]
    fn statements_split_on_line_end_semicolons_and_skip_comments() {
        let cql = "-- a comment; not a statement\nCREATE TABLE t (\n  a int PRIMARY KEY,\n  b text\n);\n\n\
                   ALTER TABLE t ADD IF NOT EXISTS c text;\nALTER TABLE t ADD IF NOT EXISTS d text";
        assert_eq!(
            statements(cql),
            [
                "CREATE TABLE t ( a int PRIMARY KEY, b text )",
                "ALTER TABLE t ADD IF NOT EXISTS c text",
                "ALTER TABLE t ADD IF NOT EXISTS d text",
            ]
        );
    }

    #[test]
    fn the_migrations_reproduce_the_schema_the_code_uses() {
        let all: String = known().iter().map(|m| m.cql).collect();
        assert!(all.contains(&format!(
            "default_time_to_live = {}",
            crate::store::IDEMPOTENCY_TTL_SECONDS
        )));
        for column in crate::store::rows::GAME_COLUMNS.split(',') {
            assert!(all.contains(column.trim()), "games column {column}");
        }
        for column in ["sig text", "expires_at timestamp", "owner_key text"] {
            assert!(all.contains(column), "{column}");
        }
    }

    #[test]
    fn checksums_are_stable_hex_sha256_ignoring_crlf() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(checksum("A;\r\nB;\r\n"), checksum("A;\nB;\n"));
        assert_ne!(checksum("A;"), checksum("B;"));
    }

    #[test]
    fn states_of_the_record() {
        let known = known();
        let latest = known.last().unwrap().version;
        assert_eq!(compare(&known, &[]), SchemaState::Missing);
        assert_eq!(
            compare(&known, &all_applied()),
            SchemaState::Current(latest)
        );
        let first_only = vec![all_applied()[0].clone()];
        let SchemaState::Pending(pending) = compare(&known, &first_only) else {
            panic!("pending expected");
        };
        assert_eq!(
            pending,
            known[1..].iter().map(Migration::label).collect::<Vec<_>>()
        );
        let refusal = compare(&known, &first_only).refusal().unwrap();
        assert!(refusal.contains("0002_games_owner_key") && refusal.contains("origin migrate"));

        let mut newer = all_applied();
        newer.push(applied(latest + 1, "future", "X;"));
        let state = compare(&known, &newer);
        let refusal = state.refusal().unwrap();
        assert!(
            refusal.contains(&format!("{:04}_future", latest + 1)),
            "{refusal}"
        );
        assert!(
            refusal.contains(&known.last().unwrap().label()),
            "{refusal}"
        );

        let mut edited = all_applied();
        edited[1].checksum = "0".repeat(64);
        let state = compare(&known, &edited);
        assert!(
            matches!(state, SchemaState::ChecksumMismatch { ref migration, .. } if migration == "0002_games_owner_key")
        );
        assert!(
            compare(&known, &[])
                .refusal()
                .unwrap()
                .contains("origin migrate")
        );
    }

    #[test]
    fn migrate_options() {
        assert_eq!(parse_options::<&str>(&[]).unwrap(), Options::default());
        assert!(
            parse_options(&["--alter-replication"])
                .unwrap()
                .alter_replication
        );
        assert!(parse_options(&["--force"]).unwrap_err().contains("usage"));
    }

    #[test]
    fn replication_comparison() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let simple = map(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", "1"),
        ]);
        assert!(replication_matches(&simple, &Replication::Simple(1)));
        assert!(!replication_matches(&simple, &Replication::Simple(3)));
        let nts = map(&[
            (
                "class",
                "org.apache.cassandra.locator.NetworkTopologyStrategy",
            ),
            ("eu", "3"),
            ("us", "3"),
        ]);
        let wanted = |dcs: &[(&str, u32)]| {
            Replication::NetworkTopology(dcs.iter().map(|(d, r)| ((*d).to_owned(), *r)).collect())
        };
        assert!(replication_matches(&nts, &wanted(&[("us", 3), ("eu", 3)])));
        assert!(!replication_matches(&nts, &wanted(&[("eu", 3)])));
        assert!(!replication_matches(&nts, &wanted(&[("eu", 3), ("us", 1)])));
        assert!(!replication_matches(&nts, &Replication::Simple(3)));
    }
}
