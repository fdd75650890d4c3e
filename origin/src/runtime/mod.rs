//! Runtime settings: the limits and game defaults an operator may change while every origin
//! keeps running (`PATCH /admin/settings`, see [`crate::routes::admin`]).
//!
//! The environment stays the start-up default: an origin with nothing stored serves what its
//! variables say. A change is stored once, in Cassandra, as a new numbered version of the
//! *overrides* (variable name -> value, exactly as the variable would be written), with an LWT,
//! so two concurrent writers can never both make version N+1 ([`store`]). Every origin polls
//! the current version ([`POLL_EVERY`], one single-partition read of one row) and, when it
//! moved, applies the new one at once and whole: the limiters ([`Limits::reconfigure`]), the
//! service's game defaults and the `/v1` stop rule all read what [`Runtime`] installed last.
//!
//! Validation is the start-up parsers' ([`effective`] runs [`LimitSettings::from_lookup`],
//! [`GameDefaults::from_env`] and [`crate::auth::v1_stop_requires_token`] over the environment
//! with the overrides on top), so a value refused at start-up is refused here, and the error
//! names the variable. A rollback is a new version whose content is the one before the current.
//!
//! What stays start-up only, and why: secrets and addresses (never stored in a table anyone
//! with CQL access reads), `TRUSTED_PROXIES`/`CLIENT_IP_HEADER`/`BODY_READ_TIMEOUT_SECONDS`
//! (who a client is must not change under a live bucket table), `METADATA_BUDGET_BYTES_PER_MINUTE`
//! (not yet wired), `GAME_MAX_AGE` and `GAME_RETENTION` (they decide the TTLs already written
//! with every game), timeouts and Cassandra/NATS settings (they shape
//! connections made at start). The edge's routing policy and thresholds are the edge's own
//! variables (`ROUTING_POLICY`, ..., docs/configuration.md), not held by the origins or the registry:
//! changing them is a `wrangler deploy`, which Cloudflare rolls out without a restart.

pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::ApiError;
use kernel::SettingsError;
use serde_json::Value;

use crate::env::Env;
use crate::error::AppError;
use crate::limits::{self, LimitSettings, Limits, Quota};
use crate::metrics::Metrics;
use crate::service::{GameDefaults, GameService};
use crate::store::StoreError;
pub use store::{CassandraSettingsStore, MemorySettingsStore, SettingsStore, StoredVersion};

/// How often an origin reads the current version.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How many times a change re-reads the current version after losing the race for the next
/// one to another writer, before answering 409.
const WRITE_ATTEMPTS: u32 = 5;

/// The variables that may be changed at runtime, in the order GET lists them.
pub const VARIABLES: [&str; 10] = [
    limits::RATE_LIMIT_START,
    limits::RATE_LIMIT_READ,
    limits::RATE_LIMIT_PROBE,
    limits::MAX_IN_FLIGHT,
    limits::MAX_IN_FLIGHT_PER_CLIENT,
    "START_DELAY_MS",
    "TICK_MS",
    "BREAK_EVERY",
    "DEFAULT_ALGORITHM",
    crate::auth::V1_STOP_REQUIRES_TOKEN,
];

/// Overrides by variable name.
pub type Content = BTreeMap<String, String>;

/// The typed values of the runtime variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    /// The budgets and in-flight caps (its other fields are the defaults: unused).
    pub limits: LimitSettings,
    /// `START_DELAY_MS`, `TICK_MS`, `BREAK_EVERY`, `DEFAULT_ALGORITHM` (its `max_age` is unused).
    pub games: GameDefaults,
    /// `V1_STOP_REQUIRES_TOKEN`.
    pub v1_stop_requires_token: bool,
}

impl Values {
    /// Each variable's value as the environment would write it.
    pub fn as_variables(&self) -> BTreeMap<&'static str, String> {
        let quota = |q: Option<Quota>| match q {
            Some(q) => format!("{}/{}", q.burst, q.period_secs),
            None => "off".to_owned(),
        };
        let slots = |n: Option<usize>| n.map_or_else(|| "off".to_owned(), |n| n.to_string());
        BTreeMap::from([
            (limits::RATE_LIMIT_START, quota(self.limits.start)),
            (limits::RATE_LIMIT_READ, quota(self.limits.read)),
            (limits::RATE_LIMIT_PROBE, quota(self.limits.probe)),
            (limits::MAX_IN_FLIGHT, slots(self.limits.max_in_flight)),
            (
                limits::MAX_IN_FLIGHT_PER_CLIENT,
                slots(self.limits.max_in_flight_per_client),
            ),
            ("START_DELAY_MS", self.games.start_delay_ms.to_string()),
            ("TICK_MS", self.games.tick_ms.get().to_string()),
            ("BREAK_EVERY", self.games.break_every.get().to_string()),
            (
                "DEFAULT_ALGORITHM",
                self.games.algorithm.as_str().to_owned(),
            ),
            (
                crate::auth::V1_STOP_REQUIRES_TOKEN,
                self.v1_stop_requires_token.to_string(),
            ),
        ])
    }
}

/// The raw start-up text of [`VARIABLES`] (missing or blank ones left out: the parsers'
/// defaults), which stored overrides are parsed on top of. Its `Debug` hides it: the typed
/// settings already say what it means, and `60/60` and an unset variable must print alike.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawVariables(pub Content);

impl std::fmt::Debug for RawVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawVariables(..)")
    }
}

/// The raw start-up values of [`VARIABLES`] from the process's variables.
pub fn startup_variables(vars: &HashMap<String, String>) -> RawVariables {
    RawVariables(
        VARIABLES
            .iter()
            .filter_map(|name| {
                let value = vars.get(*name).filter(|v| !v.trim().is_empty())?;
                Some(((*name).to_owned(), value.clone()))
            })
            .collect(),
    )
}

/// The values of `content` over the environment's `env`, checked by the start-up parsers.
/// Keys outside [`VARIABLES`] and blank values are refused, naming the key.
pub fn effective(env: &Content, content: &Content) -> Result<Values, SettingsError> {
    for (key, value) in content {
        let Some(variable) = VARIABLES.iter().find(|v| **v == key.as_str()) else {
            return Err(SettingsError::new(
                "settings",
                format!(
                    "{key:?} cannot be changed at runtime (only {})",
                    VARIABLES.join(", ")
                ),
            ));
        };
        if value.trim().is_empty() {
            return Err(SettingsError::new(
                variable,
                "is blank; send null to go back to the environment's value",
            ));
        }
    }
    let merged: HashMap<String, String> = env
        .iter()
        .chain(content)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let limits = LimitSettings::from_lookup(|name| merged.get(name).cloned())?;
    let games = GameDefaults::from_env(&Env::new(&merged))?;
    let v1_stop_requires_token = crate::auth::v1_stop_requires_token(
        merged.get(crate::auth::V1_STOP_REQUIRES_TOKEN).cloned(),
    )?;
    Ok(Values {
        limits,
        games,
        v1_stop_requires_token,
    })
}

/// `content` with `patch` applied (a JSON merge patch: a string, number or boolean sets a
/// variable, `null` removes its override). Anything else is refused naming the key.
pub fn merge(content: &Content, patch: &Value) -> Result<Content, ApiError> {
    let Some(patch) = patch.as_object() else {
        return Err(ApiError::invalid(
            "settings",
            "must be a JSON object of variable names to values",
        ));
    };
    if patch.is_empty() {
        return Err(ApiError::invalid("settings", "names no variable to change"));
    }
    let mut next = content.clone();
    for (key, value) in patch {
        if !VARIABLES.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                key.clone(),
                format!(
                    "cannot be changed at runtime (only {})",
                    VARIABLES.join(", ")
                ),
            ));
        }
        let text = match value {
            Value::Null => {
                next.remove(key);
                continue;
            }
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::invalid(
                    key.clone(),
                    "must be a string, a number, a boolean or null",
                ));
            }
        };
        next.insert(key.clone(), text);
    }
    Ok(next)
}

/// What an origin applies now.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The stored version (0: none stored, the environment's values).
    pub version: i64,
    /// Its overrides.
    pub content: Content,
    /// Who wrote it (origin region and caller address), empty for version 0.
    pub changed_by: String,
    /// When (Unix ms), 0 for version 0.
    pub changed_at_ms: i64,
    /// The typed values.
    pub values: Values,
}

/// Why a change was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// A value the start-up parsers refuse (or a key that cannot change): 422 naming it.
    #[error("{0}")]
    Invalid(ApiError),
    /// Other writers kept taking the next version, or there is nothing to roll back.
    #[error("{0}")]
    Conflict(String),
    /// Cassandra failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ChangeError {
    /// The metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            ChangeError::Invalid(_) => "invalid",
            ChangeError::Conflict(_) => "conflict",
            ChangeError::Store(_) => "failed",
        }
    }
}

impl From<ChangeError> for AppError {
    fn from(error: ChangeError) -> AppError {
        match error {
            ChangeError::Invalid(e) => AppError::Api(e),
            ChangeError::Conflict(m) => AppError::Conflict(m),
            ChangeError::Store(e) => AppError::Storage(e),
        }
    }
}

fn invalid(error: SettingsError) -> ChangeError {
    ChangeError::Invalid(ApiError::invalid(error.variable, error.message))
}

/// The runtime settings of one origin: what it applies, and how it changes them.
#[derive(Debug)]
pub struct Runtime {
    /// The raw start-up values of [`VARIABLES`].
    env: Content,
    /// The game defaults at start-up (`GAME_MAX_AGE` comes from here).
    startup_games: GameDefaults,
    store: Arc<dyn SettingsStore>,
    limits: Arc<Limits>,
    service: Arc<GameService>,
    metrics: Arc<Metrics>,
    current: RwLock<Arc<Applied>>,
    /// The last stored version found unusable (logged once, not every poll).
    unusable: RwLock<Option<i64>>,
}

impl Runtime {
    /// Version 0 (the start-up `values`) over `store`, applying to `limits` and `service`.
    pub fn new(
        env: Content,
        values: Values,
        store: Arc<dyn SettingsStore>,
        limits: Arc<Limits>,
        service: Arc<GameService>,
        metrics: Arc<Metrics>,
    ) -> Runtime {
        metrics.settings_version.set(0);
        Runtime {
            startup_games: values.games,
            env,
            store,
            limits,
            service,
            metrics,
            current: RwLock::new(Arc::new(Applied {
                version: 0,
                content: Content::new(),
                changed_by: String::new(),
                changed_at_ms: 0,
                values,
            })),
            unusable: RwLock::new(None),
        }
    }

    /// The same runtime over another store (Cassandra's, in the application).
    pub fn with_store(&self, store: Arc<dyn SettingsStore>) -> Runtime {
        Runtime::new(
            self.env.clone(),
            self.current().values.clone(),
            store,
            self.limits.clone(),
            self.service.clone(),
            self.metrics.clone(),
        )
    }

    /// What this origin applies now.
    pub fn current(&self) -> Arc<Applied> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether `/v1` stops need the owner token now.
    pub fn v1_stop_requires_token(&self) -> bool {
        self.current().values.v1_stop_requires_token
    }

    /// The newest stored version's number (0: none).
    pub async fn stored_version(&self) -> Result<i64, StoreError> {
        Ok(self.store.latest().await?.map_or(0, |v| v.version))
    }

    /// Reads the current version and applies it if it moved. A stored version this binary
    /// cannot use (written by a newer one, say) is logged and counted once, and the values in
    /// force stay.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let Some(latest) = self.store.latest().await? else {
            return Ok(());
        };
        if latest.version <= self.current().version {
            return Ok(());
        }
        match effective(&self.env, &latest.content) {
            Ok(values) => self.install(latest, values),
            Err(error) => {
                let mut unusable = self.unusable.write().unwrap_or_else(|e| e.into_inner());
                if *unusable != Some(latest.version) {
                    *unusable = Some(latest.version);
                    self.metrics
                        .settings_changes
                        .with_label_values(&["unusable"])
                        .inc();
                    tracing::error!(version = latest.version, variable = error.variable,
                        error = %error.message, applied = self.current().version,
                        "stored runtime settings are not valid here; keeping the ones in force");
                }
            }
        }
        Ok(())
    }

    /// Polls every [`POLL_EVERY`] until the runtime is dropped or the task aborted.
    pub fn spawn_poller(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let runtime = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                let Some(runtime) = runtime.upgrade() else {
                    break;
                };
                match runtime.refresh().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("runtime settings readable again");
                    }
                    Ok(()) => {}
                    // Once per outage, not every second.
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot read the runtime settings; keeping the ones in force");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// Installs `version` (checked into `values`) everywhere at once.
    fn install(&self, version: StoredVersion, values: Values) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // A poll and a local write may race; versions only move forward.
        if version.version <= current.version {
            return;
        }
        self.limits.reconfigure(&values.limits);
        self.service.set_defaults(GameDefaults {
            max_age: self.startup_games.max_age,
            retention: self.startup_games.retention,
            ..values.games
        });
        self.metrics.settings_version.set(version.version);
        tracing::info!(
            version = version.version,
            previous = current.version,
            changed_by = %version.changed_by,
            overrides = ?version.content,
            "runtime settings applied"
        );
        *current = Arc::new(Applied {
            version: version.version,
            content: version.content,
            changed_by: version.changed_by,
            changed_at_ms: version.changed_at_ms,
            values,
        });
    }

    /// Stores the current overrides with `patch` merged in as the next version, and applies
    /// it here at once (the other origins at their next poll).
    pub async fn change(&self, patch: &Value, by: &str) -> Result<Arc<Applied>, ChangeError> {
        self.write(by, |latest| {
            let content = merge(&latest.content, patch).map_err(ChangeError::Invalid)?;
            Ok(content)
        })
        .await
    }

    /// Stores the content of the version before the current one as the next version.
    pub async fn rollback(&self, by: &str) -> Result<Arc<Applied>, ChangeError> {
        let store = self.store.clone();
        self.write_async(by, move |latest| {
            let store = store.clone();
            async move {
                match latest.version {
                    0 => Err(ChangeError::Conflict(
                        "no runtime settings are stored: nothing to roll back".to_owned(),
                    )),
                    1 => Ok(Content::new()),
                    n => match store.get(n - 1).await? {
                        Some(previous) => Ok(previous.content),
                        None => Err(ChangeError::Store(StoreError::Corrupt(format!(
                            "runtime settings version {} is missing",
                            n - 1
                        )))),
                    },
                }
            }
        })
        .await
    }

    async fn write(
        &self,
        by: &str,
        next: impl Fn(&StoredVersion) -> Result<Content, ChangeError>,
    ) -> Result<Arc<Applied>, ChangeError> {
        self.write_async(by, |latest| std::future::ready(next(&latest)))
            .await
    }

    /// Reads the newest version, makes the next one's content with `next`, checks it and
    /// stores it with an LWT; on losing the race, starts again from the winner's version.
    async fn write_async<F, Fut>(&self, by: &str, next: F) -> Result<Arc<Applied>, ChangeError>
    where
        F: Fn(StoredVersion) -> Fut,
        Fut: std::future::Future<Output = Result<Content, ChangeError>>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let latest = self.store.latest().await?.unwrap_or_default();
            let content = next(latest.clone()).await?;
            let values = effective(&self.env, &content).map_err(invalid)?;
            let version = StoredVersion {
                version: latest.version + 1,
                content,
                changed_by: by.to_owned(),
                changed_at_ms: kernel::clock::now_ms(),
            };
            if self.store.insert_if_absent(&version).await? {
                self.install(version, values);
                return Ok(self.current());
            }
        }
        Err(ChangeError::Conflict(
            "other changes kept taking the next version; read the settings and retry".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(pairs: &[(&str, &str)]) -> Content {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn overrides_go_through_the_start_up_parsers() {
        let env = content(&[("RATE_LIMIT_START", "off"), ("TICK_MS", "50")]);
        let base = effective(&env, &Content::new()).unwrap();
        assert_eq!(base.limits.start, None);
        assert_eq!(base.games.tick_ms.get(), 50);
        let changed = effective(&env, &content(&[("RATE_LIMIT_START", "5/60")])).unwrap();
        assert_eq!(changed.limits.start.unwrap().burst.get(), 5);
        assert_eq!(
            changed.games.tick_ms.get(),
            50,
            "the environment's value stays"
        );
        for (key, bad) in [
            ("RATE_LIMIT_START", "lots"),
            ("MAX_IN_FLIGHT", "0"),
            ("TICK_MS", "0"),
            ("BREAK_EVERY", "1"),
            ("DEFAULT_ALGORITHM", "dice"),
            ("V1_STOP_REQUIRES_TOKEN", "maybe"),
            ("RATE_LIMIT_READ", " "),
        ] {
            let error = effective(&env, &content(&[(key, bad)])).unwrap_err();
            assert_eq!(error.variable, key, "{key}={bad}");
        }
        let error = effective(&env, &content(&[("ADMIN_TOKEN", "x")])).unwrap_err();
        assert!(error.message.contains("ADMIN_TOKEN"), "{error}");
    }

    #[test]
    fn values_print_as_the_environment_writes_them() {
        let env = content(&[
            ("RATE_LIMIT_START", "7/30"),
            ("MAX_IN_FLIGHT", "off"),
            ("DEFAULT_ALGORITHM", "lcg32"),
            ("V1_STOP_REQUIRES_TOKEN", "no"),
        ]);
        let printed = effective(&env, &Content::new()).unwrap().as_variables();
        assert_eq!(printed["RATE_LIMIT_START"], "7/30");
        assert_eq!(printed["MAX_IN_FLIGHT"], "off");
        assert_eq!(printed["DEFAULT_ALGORITHM"], "lcg32");
        assert_eq!(printed["V1_STOP_REQUIRES_TOKEN"], "false");
        assert_eq!(printed.len(), VARIABLES.len());
        // What it prints parses back to the same values.
        let reparsed: Content = printed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        assert_eq!(
            effective(&Content::new(), &reparsed).unwrap(),
            effective(&env, &Content::new()).unwrap()
        );
    }

    fn runtime(env: &[(&str, &str)]) -> (Runtime, Arc<MemorySettingsStore>, Arc<Metrics>) {
        let env = content(env);
        let values = effective(&env, &Content::new()).unwrap();
        let metrics = Arc::new(Metrics::new("eu"));
        let service = GameService::new(
            Arc::new(crate::store::memory::MemoryStore::default()),
            api::RegionName::parse("eu").unwrap(),
            values.games,
            metrics.clone(),
        );
        let store = Arc::new(MemorySettingsStore::default());
        let runtime = Runtime::new(
            env,
            values.clone(),
            store.clone(),
            Arc::new(Limits::new(values.limits.clone())),
            Arc::new(service),
            metrics.clone(),
        );
        (runtime, store, metrics)
    }

    #[tokio::test]
    async fn changes_rollbacks_and_unusable_versions() {
        let (runtime, store, metrics) = runtime(&[("RATE_LIMIT_START", "off")]);
        let error = runtime.rollback("t").await.unwrap_err();
        assert!(matches!(error, ChangeError::Conflict(_)), "{error}");
        let applied = runtime
            .change(
                &serde_json::json!({"RATE_LIMIT_START": "1/60", "TICK_MS": 40}),
                "t",
            )
            .await
            .unwrap();
        assert_eq!(applied.version, 1);
        assert_eq!(runtime.limits.settings().start.unwrap().burst.get(), 1);
        assert_eq!(runtime.service.defaults().tick_ms.get(), 40);
        assert_eq!(metrics.settings_version.get(), 1);
        // Invalid: nothing stored, nothing applied.
        let error = runtime
            .change(&serde_json::json!({"RATE_LIMIT_START": "1/0"}), "t")
            .await
            .unwrap_err();
        assert_eq!(error.outcome(), "invalid");
        assert_eq!(runtime.stored_version().await.unwrap(), 1);
        assert_eq!(runtime.current().version, 1);
        // A rollback is version 2 with version 0's content: the environment's values.
        let applied = runtime.rollback("t").await.unwrap();
        assert_eq!((applied.version, applied.content.len()), (2, 0));
        assert_eq!(runtime.limits.settings().start, None);
        assert_eq!(runtime.service.defaults().tick_ms.get(), 100);
        // Rolling back again goes forward to version 1's content.
        let applied = runtime.rollback("t").await.unwrap();
        assert_eq!(applied.version, 3);
        assert_eq!(applied.content["RATE_LIMIT_START"], "1/60");
        // A version this binary cannot use is skipped, counted once, and the values stay.
        let bad = StoredVersion {
            version: 4,
            content: content(&[("TICK_MS", "fast")]),
            ..StoredVersion::default()
        };
        assert!(store.insert_if_absent(&bad).await.unwrap());
        runtime.refresh().await.unwrap();
        runtime.refresh().await.unwrap();
        assert_eq!(runtime.current().version, 3);
        assert_eq!(
            metrics
                .settings_changes
                .with_label_values(&["unusable"])
                .get(),
            1
        );
        // A good newer one is applied by the next poll.
        let good = StoredVersion {
            version: 5,
            content: content(&[("MAX_IN_FLIGHT", "9")]),
            ..StoredVersion::default()
        };
        assert!(store.insert_if_absent(&good).await.unwrap());
        runtime.refresh().await.unwrap();
        assert_eq!(runtime.current().version, 5);
        assert_eq!(runtime.limits.settings().max_in_flight, Some(9));
        assert_eq!(runtime.limits.settings().start, None);
    }

    #[test]
    fn merge_patches() {
        let base = content(&[("RATE_LIMIT_START", "5/60"), ("TICK_MS", "50")]);
        let next = merge(
            &base,
            &serde_json::json!({"RATE_LIMIT_START": null, "MAX_IN_FLIGHT": 100, "V1_STOP_REQUIRES_TOKEN": false}),
        )
        .unwrap();
        assert_eq!(
            next,
            content(&[
                ("MAX_IN_FLIGHT", "100"),
                ("TICK_MS", "50"),
                ("V1_STOP_REQUIRES_TOKEN", "false")
            ])
        );
        for (patch, field) in [
            (
                serde_json::json!({"TRUSTED_PROXIES": "0.0.0.0/0"}),
                "TRUSTED_PROXIES",
            ),
            (serde_json::json!({"TICK_MS": [1]}), "TICK_MS"),
            (serde_json::json!({}), "settings"),
            (serde_json::json!([1]), "settings"),
        ] {
            let error = merge(&base, &patch).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{patch}");
        }
    }
}
