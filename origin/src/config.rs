//! Typed settings read from environment variables and validated at start-up.
//!
//! A bad value stops the process with a message that names the variable, so a typo in a
//! deployment never becomes a half-working origin.
//!
//! Each subsystem owns its section and its parser (the store its Cassandra settings, the
//! service its game defaults, the outbox its event settings, and auth, limits, notify and the
//! registry theirs); this module only assembles [`Settings`] from them and reads the few
//! variables of the server itself (`HOST`, `PORT`, `REGION`, `REQUEST_TIMEOUT_SECONDS`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use api::RegionName;
use kernel::SettingsError;

use crate::auth::AuthSettings;
use crate::env::Env;
use crate::limits::LimitSettings;
use crate::notify::NotifySettings;
use crate::outbox::RelaySettings;
use crate::registry::RegistrySettings;

// The sections, where older code and tests look for them.
pub use crate::outbox::EventSettings;
pub use crate::service::GameDefaults;
pub use crate::store::{CassandraSettings, Replication, StoreChoice};

/// Every environment variable the origin reads (deployment files are checked against it).
pub const VARIABLES: &[&str] = &[
    "HOST",
    "PORT",
    "REGION",
    "CASSANDRA_HOSTS",
    "CASSANDRA_KEYSPACE",
    "CASSANDRA_USERNAME",
    "CASSANDRA_PASSWORD",
    "CASSANDRA_CONSISTENCY",
    "CASSANDRA_SERIAL_CONSISTENCY",
    "CASSANDRA_LOCAL_DC",
    "CASSANDRA_REPLICATION",
    "CASSANDRA_TIMEOUT_SECONDS",
    // Versioned schema (crate::store::migrate).
    "SCHEMA_AUTO_MIGRATE",
    "START_DELAY_MS",
    "TICK_MS",
    "BREAK_EVERY",
    // A game's maximum lifetime (crate::max_age).
    "GAME_MAX_AGE",
    "REQUEST_TIMEOUT_SECONDS",
    "NATS_URL",
    "NATS_STREAM_REPLICAS",
    "NATS_SYNC",
    "REGISTER_INTERVAL_SECONDS",
    "PUBLIC_URL",
    "ADMIN_TOKEN",
    "REGISTRY_SECRET",
    "REGISTRY_SECRET_FILE",
    "REGISTRY_PREVIOUS_SECRET",
    "REGISTRY_PREVIOUS_SECRET_FILE",
    "TEST_MODE",
    "TEST_ARTIFICIAL_DELAY_MS",
    "RUST_LOG",
    // Owner tokens (crate::auth).
    "OWNER_TOKEN_SECRET",
    "OWNER_TOKEN_PREVIOUS_SECRET",
    "OWNER_TOKEN_TTL_SECONDS",
    "SEEDSYNC_ENV",
    "V1_STOP_REQUIRES_TOKEN",
    // Abuse limits (crate::limits).
    "RATE_LIMIT_START",
    "RATE_LIMIT_READ",
    "MAX_IN_FLIGHT",
    "TRUSTED_PROXIES",
    "CLIENT_IP_HEADER",
    // Exit notices to the edge's live rooms (crate::notify).
    "EDGE_NOTIFY_URL",
    "EDGE_NOTIFY_SECRET",
    // Each secret's file form (SECRET_FILE_VARIABLES).
    "OWNER_TOKEN_SECRET_FILE",
    "OWNER_TOKEN_PREVIOUS_SECRET_FILE",
    "CASSANDRA_PASSWORD_FILE",
    "ADMIN_TOKEN_FILE",
    "EDGE_NOTIFY_SECRET_FILE",
];

/// The secrets the origin reads that may also be given as a file (`NAME_FILE`: a path, as
/// Docker and Kubernetes mount secrets), so a secret need not sit in the environment of every
/// process listing. The registry and edge secrets read their own `*_FILE` variables
/// ([`trust::Keys::from_settings`]).
pub const SECRET_FILE_VARIABLES: [(&str, &str); 5] = [
    ("OWNER_TOKEN_SECRET", "OWNER_TOKEN_SECRET_FILE"),
    (
        "OWNER_TOKEN_PREVIOUS_SECRET",
        "OWNER_TOKEN_PREVIOUS_SECRET_FILE",
    ),
    ("CASSANDRA_PASSWORD", "CASSANDRA_PASSWORD_FILE"),
    ("ADMIN_TOKEN", "ADMIN_TOKEN_FILE"),
    ("EDGE_NOTIFY_SECRET", "EDGE_NOTIFY_SECRET_FILE"),
];

/// `vars` with every `NAME_FILE` of [`SECRET_FILE_VARIABLES`] replaced by `NAME` holding the
/// file's contents (surrounding whitespace trimmed). Both set, an unreadable or an empty file
/// is an error naming the variable, never a value.
fn with_secret_files(
    vars: &HashMap<String, String>,
    read_file: impl Fn(&str) -> std::io::Result<String>,
) -> Result<HashMap<String, String>, SettingsError> {
    let mut resolved = vars.clone();
    for (name, file_name) in SECRET_FILE_VARIABLES {
        let lookup = |v: &str| vars.get(v).cloned();
        if lookup(file_name).is_none_or(|p| p.trim().is_empty()) {
            continue;
        }
        if let Some(secret) = kernel::secret_setting(lookup, &read_file, name, file_name)? {
            resolved.insert(name.to_owned(), secret.expose().to_owned());
        }
        resolved.remove(file_name);
    }
    Ok(resolved)
}

/// Everything the origin needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// The region this origin serves.
    pub region: RegionName,
    /// Where games live: Cassandra, always from the environment (tests may choose memory).
    pub store: StoreChoice,
    /// Storage.
    pub cassandra: CassandraSettings,
    /// Defaults for new games.
    pub games: GameDefaults,
    /// A request that takes longer is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Owner tokens: the keyring and whether `/v1` stops need them.
    pub auth: AuthSettings,
    /// Per-client budgets and the in-flight cap.
    pub limits: LimitSettings,
    /// The live region registry (heartbeats, public URL, admin token).
    pub registry: RegistrySettings,
    /// Game events (`NATS_URL` set): the outbox and its relay to NATS JetStream.
    pub events: Option<EventSettings>,
    /// Exit notices to the edge's live rooms (`EDGE_NOTIFY_URL` and `EDGE_NOTIFY_SECRET` set).
    pub notify: Option<NotifySettings>,
    /// The relay's pacing when a test sets one; otherwise derived ([`Settings::relay`]).
    pub relay_pacing: Option<RelaySettings>,
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_map(&std::env::vars().collect())
    }

    /// Settings from a map of variables (missing or empty means default). Each of
    /// [`SECRET_FILE_VARIABLES`] may instead name a file holding the secret.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let vars = with_secret_files(vars, |path| std::fs::read_to_string(path))?;
        let env = Env::new(&vars);
        let host = env.parse(
            "HOST",
            IpAddr::from([0, 0, 0, 0]),
            |_| true,
            "an IP address",
        )?;
        let port = env.parse("PORT", 8080u16, |_| true, "a port number (0-65535)")?;
        let region = RegionName::parse(env.get("REGION").unwrap_or("eu"))
            .map_err(|e| SettingsError::new("REGION", e.to_string()))?;
        let request_timeout_seconds = env.parse(
            "REQUEST_TIMEOUT_SECONDS",
            10u64,
            |s| (1..=300).contains(s),
            "1..=300",
        )?;
        Ok(Settings {
            registry: RegistrySettings::from_lookup(|name| env.lookup(name), host, port)?,
            host,
            port,
            region,
            store: StoreChoice::default(),
            cassandra: CassandraSettings::from_env(&env)?,
            games: GameDefaults::from_env(&env)?,
            request_timeout: Duration::from_secs(request_timeout_seconds),
            events: EventSettings::from_env(&env)?,
            auth: AuthSettings::from_lookup(|name| env.lookup(name), crate::auth::random_secret)?,
            limits: LimitSettings::from_lookup(|name| env.lookup(name))?,
            notify: NotifySettings::from_lookup(|name| env.lookup(name))?,
            relay_pacing: None,
        })
    }

    /// The relay's pacing for this origin: its timeouts, and the hold its broker's
    /// `sync_interval` (`NATS_SYNC`) asks for (or what a test set in `relay_pacing`).
    pub fn relay(&self) -> RelaySettings {
        if let Some(pacing) = self.relay_pacing {
            return pacing;
        }
        let relay = RelaySettings::new(self.request_timeout, self.cassandra.timeout);
        match &self.events {
            Some(events) => relay.with_broker_sync(events.broker_sync),
            None => relay,
        }
    }
}

#[cfg(test)]
mod tests {
    use scylla::frame::types::{Consistency, SerialConsistency};

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_map(&HashMap::new()).unwrap();
        assert_eq!(settings.port, 8080);
        assert_eq!(settings.region.as_str(), "eu");
        assert_eq!(settings.cassandra.consistency, Consistency::LocalQuorum);
        assert_eq!(
            settings.cassandra.serial_consistency,
            SerialConsistency::Serial
        );
        assert_eq!(settings.cassandra.replication, Replication::Simple(1));
        assert_eq!(settings.games.start_delay_ms, 3_000);
        assert_eq!(settings.games.tick_ms.get(), 100);
        assert_eq!(settings.games.break_every.get(), 50);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases = [
            ("PORT", "80a"),
            ("HOST", "localhost"),
            ("REGION", "EU WEST"),
            ("CASSANDRA_HOSTS", "127.0.0.1"),
            ("CASSANDRA_KEYSPACE", "1abc"),
            ("CASSANDRA_CONSISTENCY", "SOMETIMES"),
            ("CASSANDRA_SERIAL_CONSISTENCY", "QUORUM"),
            ("CASSANDRA_REPLICATION", "eu:0"),
            ("CASSANDRA_TIMEOUT_SECONDS", "0"),
            ("START_DELAY_MS", "-1"),
            ("TICK_MS", "0"),
            ("BREAK_EVERY", "1"),
            ("CASSANDRA_USERNAME", "alice"),
            ("NATS_URL", "127.0.0.1"),
            ("EDGE_NOTIFY_URL", "https://edge.example"),
            ("NATS_URL", "http://127.0.0.1:4222"),
            ("NATS_URL", "nats://:4222"),
        ];
        for (variable, value) in cases {
            let err = Settings::from_map(&vars(&[(variable, value)])).unwrap_err();
            // A variable that needs its partner names the missing partner.
            let expected = match variable {
                "CASSANDRA_USERNAME" => "CASSANDRA_PASSWORD",
                "EDGE_NOTIFY_URL" => "EDGE_NOTIFY_SECRET",
                other => other,
            };
            assert_eq!(err.variable, expected, "{variable}={value}: {err}");
            assert!(err.to_string().contains(expected));
        }
    }

    #[test]
    fn nats_url_enables_events() {
        assert_eq!(Settings::from_map(&HashMap::new()).unwrap().events, None);
        for (value, expected) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("127.0.0.1:4222", "127.0.0.1:4222"),
            (
                "nats://a:4222, tls://user:pw@b:4443",
                "nats://a:4222,tls://user:pw@b:4443",
            ),
        ] {
            let settings = Settings::from_map(&vars(&[("NATS_URL", value)])).unwrap();
            assert_eq!(
                settings.events,
                Some(EventSettings {
                    nats_url: expected.into(),
                    stream_replicas: None,
                    broker_sync: std::time::Duration::from_secs(1),
                }),
                "{value}"
            );
        }
    }

    #[test]
    fn stream_replicas_are_checked_and_optional() {
        let with = |replicas: &str| {
            Settings::from_map(&vars(&[
                ("NATS_URL", "nats://a:4222"),
                ("NATS_STREAM_REPLICAS", replicas),
            ]))
        };
        assert_eq!(with("3").unwrap().events.unwrap().stream_replicas, Some(3));
        for bad in ["0", "6", "three"] {
            let err = with(bad).unwrap_err();
            assert_eq!(err.variable, "NATS_STREAM_REPLICAS", "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_broker_sync_interval_is_checked() {
        let with = |sync: &str| {
            Settings::from_map(&vars(&[("NATS_URL", "nats://a:4222"), ("NATS_SYNC", sync)]))
        };
        assert_eq!(
            with("always").unwrap().events.unwrap().broker_sync,
            std::time::Duration::ZERO
        );
        assert_eq!(
            with("250ms").unwrap().events.unwrap().broker_sync,
            std::time::Duration::from_millis(250)
        );
        for bad in ["soon", "1d", "0s"] {
            assert_eq!(with(bad).unwrap_err().variable, "NATS_SYNC", "{bad:?}");
        }
    }

    #[test]
    fn the_hold_follows_the_brokers_sync_interval() {
        let relay = |extra: &[(&str, &str)]| Settings::from_map(&vars(extra)).unwrap().relay();
        let relay_500 = relay(&[
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("NATS_SYNC", "500ms"),
        ]);
        assert_eq!(relay_500.durable_after, Duration::from_secs(1));
        let always = relay(&[
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("NATS_SYNC", "always"),
        ]);
        assert_eq!(always.durable_after, Duration::ZERO);
        // The shipped default: the broker syncs every second.
        assert_eq!(relay(&[]).durable_after, Duration::from_secs(2));
    }

    #[test]
    fn secrets_may_come_from_files_and_never_print() {
        let dir = std::env::temp_dir().join(format!("seedsync-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "file-held-password\n").unwrap();
        let path = file.to_str().unwrap();
        let s = Settings::from_map(&vars(&[
            ("CASSANDRA_USERNAME", "alice"),
            ("CASSANDRA_PASSWORD_FILE", path),
            ("ADMIN_TOKEN", "admin-token-value"),
        ]))
        .unwrap();
        let (user, password) = s.cassandra.credentials.as_ref().unwrap();
        assert_eq!(
            (user.as_str(), password.expose()),
            ("alice", "file-held-password")
        );
        let printed = format!("{s:?}");
        for secret in ["file-held-password", "admin-token-value"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        // Both forms, a missing file: errors naming the variable, not the value.
        let e = Settings::from_map(&vars(&[
            ("ADMIN_TOKEN", "admin-token-value"),
            ("ADMIN_TOKEN_FILE", path),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "ADMIN_TOKEN");
        assert!(!e.to_string().contains("admin-token-value"), "{e}");
        let e = Settings::from_map(&vars(&[("OWNER_TOKEN_SECRET_FILE", "/nonexistent/x")]))
            .unwrap_err();
        assert_eq!(e.variable, "OWNER_TOKEN_SECRET_FILE");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
