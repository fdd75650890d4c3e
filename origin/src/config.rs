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
use crate::edge_auth::EdgeAuthSettings;
use crate::env::Env;
use crate::limits::LimitSettings;
use crate::notify::NotifySettings;
use crate::otlp::TraceSettings;
use crate::outbox::RelaySettings;
use crate::registry::RegistrySettings;
use crate::tls::TlsSettings;

// The sections, where older code and tests look for them.
pub use crate::outbox::EventSettings;
pub use crate::service::GameDefaults;
pub use crate::store::{CassandraSettings, Replication, StoreChoice};

/// One variable of the reference: what `origin --help` prints and what
/// docs/configuration.md's Origin tables must say (a unit test in [`crate::cli`] holds the
/// two together, and another that each literal default is what the parser assumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The environment variable.
    pub name: &'static str,
    /// The default exactly as the docs' "default" cell writes it (Markdown: `unset`, or a
    /// value in backticks, perhaps with a remark).
    pub default: &'static str,
    /// One line on what it does (the docs say more).
    pub meaning: &'static str,
}

/// A group of variables, as docs/configuration.md's Origin section groups them.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The group's heading.
    pub title: &'static str,
    /// Its variables, in the docs' order.
    pub variables: &'static [Variable],
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        default,
        meaning,
    }
}

/// Every environment variable the origin reads, with its default and meaning: the one
/// definition behind [`VARIABLES`], `origin --help` and the check of the docs.
pub const REFERENCE: &[Section] = &[
    Section {
        title: "Secrets as files (Docker and Kubernetes secrets; setting both NAME and NAME_FILE is an error)",
        variables: &[
            var(
                "OWNER_TOKEN_SECRET_FILE",
                "unset",
                "a file holding OWNER_TOKEN_SECRET",
            ),
            var(
                "OWNER_TOKEN_PREVIOUS_SECRET_FILE",
                "unset",
                "a file holding OWNER_TOKEN_PREVIOUS_SECRET",
            ),
            var(
                "CASSANDRA_PASSWORD_FILE",
                "unset",
                "a file holding CASSANDRA_PASSWORD",
            ),
            var("ADMIN_TOKEN_FILE", "unset", "a file holding ADMIN_TOKEN"),
            var(
                "EDGE_NOTIFY_SECRET_FILE",
                "unset",
                "a file holding EDGE_NOTIFY_SECRET",
            ),
        ],
    },
    Section {
        title: "Process and region",
        variables: &[
            var("HOST", "`0.0.0.0`", "IP address to listen on"),
            var("PORT", "`8080`", "port to listen on"),
            var("REGION", "`eu`", "this origin's region: 1-32 of a-z 0-9 -"),
            var(
                "PUBLIC_URL",
                "`http://HOST:PORT` (`https://` with `TLS_CERT_FILE`; `127.0.0.1` for `0.0.0.0`)",
                "the http(s) base URL the edge reaches this origin at (written into the region registry)",
            ),
            var(
                "REGISTER_INTERVAL_SECONDS",
                "`10`",
                "registry heartbeat, 1-3600; a record lives 3 intervals",
            ),
            var(
                "ADMIN_TOKEN",
                "unset",
                "secret: bearer token of the drain/undrain routes (unset: they answer 403)",
            ),
            var(
                "HEADER_READ_TIMEOUT_SECONDS",
                "`10`",
                "1-300; a connection that takes longer to send a request's headers (or stays idle that long between requests) is closed",
            ),
            var(
                "REQUEST_TIMEOUT_SECONDS",
                "`10`",
                "1-300; a slower request gets 503 timeout",
            ),
            var(
                "RUST_LOG",
                "`info`",
                "log filter (tracing EnvFilter); logs are JSON lines",
            ),
            var(
                "TEST_MODE",
                "unset",
                "tests only: 1 enables TEST_ARTIFICIAL_DELAY_MS",
            ),
            var(
                "TEST_ARTIFICIAL_DELAY_MS",
                "unset",
                "tests only, with TEST_MODE=1: every request waits this long first (0-60000)",
            ),
        ],
    },
    Section {
        title: "TLS",
        variables: &[
            var(
                "TLS_CERT_FILE",
                "unset",
                "PEM certificate chain (leaf first); with TLS_KEY_FILE the listener speaks only HTTPS",
            ),
            var(
                "TLS_KEY_FILE",
                "unset",
                "PEM private key of the certificate; set both TLS_* files or neither",
            ),
            var(
                "TLS_RELOAD_SECONDS",
                "`10`",
                "how often (1-86400) the pair is checked for changes; SIGHUP reloads at once",
            ),
        ],
    },
    Section {
        title: "Cassandra",
        variables: &[
            var(
                "CASSANDRA_HOSTS",
                "`127.0.0.1:9042`",
                "comma-separated host:port contact points",
            ),
            var(
                "CASSANDRA_KEYSPACE",
                "`seedsync`",
                "a letter then up to 47 letters, digits or _",
            ),
            var(
                "CASSANDRA_USERNAME",
                "unset",
                "set with CASSANDRA_PASSWORD or not at all",
            ),
            var(
                "CASSANDRA_PASSWORD",
                "unset",
                "secret: set with CASSANDRA_USERNAME",
            ),
            var(
                "CASSANDRA_CONSISTENCY",
                "`LOCAL_QUORUM`",
                "reads and writes: ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE",
            ),
            var(
                "CASSANDRA_SERIAL_CONSISTENCY",
                "`SERIAL`",
                "the lightweight transactions (one active game per user): SERIAL or LOCAL_SERIAL",
            ),
            var(
                "CASSANDRA_LOCAL_DC",
                "unset",
                "the datacenter the driver prefers",
            ),
            var(
                "CASSANDRA_REPLICATION",
                "`SimpleStrategy:1`",
                "keyspace replication: SimpleStrategy:RF, or dc:RF,dc:RF,...",
            ),
            var(
                "CASSANDRA_TIMEOUT_SECONDS",
                "`5`",
                "per request to Cassandra, 1-120",
            ),
            var(
                "CASSANDRA_TLS_CA_FILE",
                "unset (plain CQL)",
                "PEM CA of the nodes' certificates: set, every connection to Cassandra is TLS",
            ),
            var(
                "CASSANDRA_TLS_CERT_FILE",
                "unset",
                "PEM client certificate for clusters requiring one; with CASSANDRA_TLS_KEY_FILE",
            ),
            var(
                "CASSANDRA_TLS_KEY_FILE",
                "unset",
                "PEM private key of CASSANDRA_TLS_CERT_FILE",
            ),
            var(
                "SCHEMA_AUTO_MIGRATE",
                "`true` in development, `false` with `SEEDSYNC_ENV=production`",
                "true: a starting origin applies pending schema migrations; false: it only checks the version (run origin migrate)",
            ),
        ],
    },
    Section {
        title: "New games",
        variables: &[
            var(
                "START_DELAY_MS",
                "`3000`",
                "countdown before a new game's startAt, 0-600000",
            ),
            var("TICK_MS", "`100`", "default tick length, 1-60000"),
            var(
                "BREAK_EVERY",
                "`50`",
                "default mean steps between breaks, 2-1000000",
            ),
            var(
                "DEFAULT_ALGORITHM",
                "`mix32-v1`",
                "the algorithm of a /game/start that names none: mix32-v1, lcg32 or interval-v0 (/v1 keeps interval-v0)",
            ),
            var(
                "GAME_MAX_AGE",
                "`24h`",
                "a game's maximum lifetime (90s, 30m, 24h, 7d or seconds; 1 s to 365 d)",
            ),
            var(
                "GAME_RETENTION",
                "`30d`",
                "how long a finished game stays stored (Cassandra TTLs; 1 s to 3650 d)",
            ),
        ],
    },
    Section {
        title: "Owner tokens",
        variables: &[
            var(
                "OWNER_TOKEN_SECRET",
                "unset",
                "secret: HMAC key of owner tokens, 32+ bytes, the same on every origin (required in production)",
            ),
            var(
                "OWNER_TOKEN_PREVIOUS_SECRET",
                "unset",
                "secret: still verifies during a rotation",
            ),
            var(
                "OWNER_TOKEN_TTL_SECONDS",
                "`604800` (7 days)",
                "token lifetime from the game's creation, 1 s to 1 year",
            ),
            var(
                "SEEDSYNC_ENV",
                "`development`",
                "development or production: how strict start-up is about secrets",
            ),
            var(
                "V1_STOP_REQUIRES_TOKEN",
                "`true`",
                "whether POST /v1/sessions/{id}/stop needs the owner token",
            ),
        ],
    },
    Section {
        title: "Abuse limits",
        variables: &[
            var(
                "RATE_LIMIT_START",
                "`60/60`",
                "starts per client: N/SECONDS or off",
            ),
            var(
                "RATE_LIMIT_READ",
                "`1200/60`",
                "other limited requests per client: N/SECONDS or off",
            ),
            var(
                "RATE_LIMIT_PROBE",
                "`600/60`",
                "GET/HEAD of /health, /ready, /healthz, /metrics per client (they never take an in-flight slot): N/SECONDS or off",
            ),
            var(
                "MAX_IN_FLIGHT",
                "`512`",
                "requests served at once (1-1000000) or off",
            ),
            var(
                "MAX_IN_FLIGHT_PER_CLIENT",
                "`32`",
                "requests one client may have in flight at once (1-1000000) or off",
            ),
            var(
                "METADATA_BUDGET_BYTES_PER_MINUTE",
                "`65536`",
                "bytes of start metadata per client per minute (4096-1000000000) or off",
            ),
            var(
                "BODY_READ_TIMEOUT_SECONDS",
                "`5`",
                "seconds a request body may take to arrive (1-300), else 408",
            ),
            var(
                "TRUSTED_PROXIES",
                "unset",
                "comma-separated IPs or CIDRs whose CLIENT_IP_HEADER is believed",
            ),
            var(
                "CLIENT_IP_HEADER",
                "`x-forwarded-for`",
                "the header trusted proxies set",
            ),
        ],
    },
    Section {
        title: "Requests from the edge",
        variables: &[
            var(
                "EDGE_ORIGIN_SECRET",
                "unset (secret; required with `SEEDSYNC_ENV=production`)",
                "secret: the edge signs every request with it (client address, user); production refuses unsigned public API calls",
            ),
            var(
                "EDGE_ORIGIN_SECRET_FILE",
                "unset",
                "a file holding EDGE_ORIGIN_SECRET",
            ),
            var(
                "EDGE_ORIGIN_PREVIOUS_SECRET",
                "unset (secret)",
                "secret: the one before it, still accepted during a rotation",
            ),
            var(
                "EDGE_ORIGIN_PREVIOUS_SECRET_FILE",
                "unset",
                "a file holding EDGE_ORIGIN_PREVIOUS_SECRET",
            ),
            var(
                "ORIGIN_DIRECT_ACCESS",
                "`none`",
                "none or v1: v1 lets /v1 clients call this origin directly in production",
            ),
        ],
    },
    Section {
        title: "Game events",
        variables: &[
            var(
                "NATS_URL",
                "unset",
                "nats://host:4222 (comma-separated for several): turns on game events",
            ),
            var(
                "NATS_SYNC",
                "`1s`",
                "the broker's JetStream sync_interval (always, or a duration like 500ms)",
            ),
            var(
                "NATS_STREAM_REPLICAS",
                "unset",
                "1-5 copies of the GAME_EVENTS stream (unset: the stream's own count)",
            ),
            var(
                "LEADERBOARD_CONSUMER",
                "unset",
                "a JetStream durable consumer name: this origin keeps the leaderboard (needs NATS_URL)",
            ),
            var(
                "LEADERBOARD_SUBJECT",
                "`game.exited.*`",
                "the exits the leaderboard counts (game.exited.<region> for one region's)",
            ),
        ],
    },
    Section {
        title: "Exit notices to the edge",
        variables: &[
            var(
                "EDGE_NOTIFY_URL",
                "unset",
                "the edge's base URL: each first exit is posted to its live room",
            ),
            var(
                "EDGE_NOTIFY_SECRET",
                "unset",
                "secret: 16+ bytes, the edge's same value; set both EDGE_NOTIFY_* or neither",
            ),
            var(
                "EDGE_NOTIFY_CA_FILE",
                "unset",
                "PEM root CA(s) trusted for an https EDGE_NOTIFY_URL besides the system's",
            ),
        ],
    },
    Section {
        title: "Region registry",
        variables: &[
            var(
                "REGISTRY_SECRET",
                "unset (secret; required with `SEEDSYNC_ENV=production`)",
                "secret: 32+ bytes, the same on every origin and the edge; signs registry rows",
            ),
            var(
                "REGISTRY_SECRET_FILE",
                "unset",
                "a file holding REGISTRY_SECRET",
            ),
            var(
                "REGISTRY_PREVIOUS_SECRET",
                "unset (secret)",
                "secret: the previous one during a rotation (verifies, never signs)",
            ),
            var(
                "REGISTRY_PREVIOUS_SECRET_FILE",
                "unset",
                "a file holding REGISTRY_PREVIOUS_SECRET",
            ),
        ],
    },
    Section {
        title: "Tracing (OpenTelemetry)",
        variables: &[
            var(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "unset (no spans exported)",
                "the collector's OTLP/HTTP base URL (http:// or https://); spans are posted to /v1/traces",
            ),
            var(
                "OTEL_SERVICE_NAME",
                "`seedsync-origin`",
                "the spans' service.name",
            ),
            var(
                "OTEL_RESOURCE_ATTRIBUTES",
                "unset",
                "extra resource attributes: key=value,key=value (seedsync.region is always added)",
            ),
            var(
                "OTEL_TRACES_SAMPLER",
                "`parentbased_always_on`",
                "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ),
            var(
                "OTEL_TRACES_SAMPLER_ARG",
                "`1`",
                "the ratio (0-1) of the *traceidratio samplers",
            ),
        ],
    },
];

const fn variable_count(sections: &[Section]) -> usize {
    let (mut count, mut i) = (0, 0);
    while i < sections.len() {
        count += sections[i].variables.len();
        i += 1;
    }
    count
}

const fn variable_names<const N: usize>(sections: &[Section]) -> [&'static str; N] {
    let mut names = [""; N];
    let (mut n, mut i) = (0, 0);
    while i < sections.len() {
        let mut j = 0;
        while j < sections[i].variables.len() {
            names[n] = sections[i].variables[j].name;
            n += 1;
            j += 1;
        }
        i += 1;
    }
    names
}

/// Every environment variable the origin reads (deployment files are checked against it),
/// the names of [`REFERENCE`].
pub const VARIABLES: &[&str] = &variable_names::<{ variable_count(REFERENCE) }>(REFERENCE);

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
    /// A connection that takes longer to send a request's headers is closed.
    pub header_read_timeout: Duration,
    /// Owner tokens: the keyring and whether `/v1` stops need them.
    pub auth: AuthSettings,
    /// Per-client budgets and the in-flight cap.
    pub limits: LimitSettings,
    /// Which requests come from the edge (`EDGE_ORIGIN_SECRET`), and whether the public API
    /// is refused to others (production).
    pub edge_auth: EdgeAuthSettings,
    /// The live region registry (heartbeats, public URL, admin token).
    pub registry: RegistrySettings,
    /// Game events (`NATS_URL` set): the outbox and its relay to NATS JetStream.
    pub events: Option<EventSettings>,
    /// The leaderboard consumer (`LEADERBOARD_CONSUMER` set, with `NATS_URL`).
    pub leaderboard: Option<crate::leaderboard::LeaderboardSettings>,
    /// Exit notices to the edge's live rooms (`EDGE_NOTIFY_URL` and `EDGE_NOTIFY_SECRET` set).
    pub notify: Option<NotifySettings>,
    /// HTTPS on the listener (`TLS_CERT_FILE` and `TLS_KEY_FILE` set).
    pub tls: Option<TlsSettings>,
    /// The relay's pacing when a test sets one; otherwise derived ([`Settings::relay`]).
    pub relay_pacing: Option<RelaySettings>,
    /// Span export over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT` set).
    pub tracing: Option<TraceSettings>,
    /// The raw start-up values of the variables an admin may change at runtime
    /// ([`crate::runtime::VARIABLES`]): stored overrides are parsed on top of them.
    pub runtime_env: crate::runtime::RawVariables,
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
        let header_read_timeout_seconds = env.parse(
            "HEADER_READ_TIMEOUT_SECONDS",
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
            header_read_timeout: Duration::from_secs(header_read_timeout_seconds),
            leaderboard: leaderboard_from_env(&env)?,
            events: EventSettings::from_env(&env)?,
            auth: AuthSettings::from_lookup(|name| env.lookup(name), crate::auth::random_secret)?,
            limits: LimitSettings::from_lookup(|name| env.lookup(name))?,
            edge_auth: EdgeAuthSettings::from_lookup(
                |name| env.lookup(name),
                |path| std::fs::read_to_string(path),
            )?,
            notify: NotifySettings::from_lookup(|name| env.lookup(name))?,
            tls: TlsSettings::from_lookup(|name| env.lookup(name))?,
            relay_pacing: None,
            tracing: TraceSettings::from_env(&env)?,
            runtime_env: crate::runtime::startup_variables(&vars),
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

/// Reads `LEADERBOARD_CONSUMER` and `LEADERBOARD_SUBJECT`: `None` when the consumer is unset.
fn leaderboard_from_env(
    env: &Env<'_>,
) -> Result<Option<crate::leaderboard::LeaderboardSettings>, SettingsError> {
    use crate::leaderboard::consumer::{DEFAULT_SUBJECT, valid_consumer_name, valid_subject};
    let Some(consumer) = env.get("LEADERBOARD_CONSUMER") else {
        return Ok(None);
    };
    if !valid_consumer_name(consumer) {
        return Err(SettingsError::new(
            "LEADERBOARD_CONSUMER",
            format!("{consumer:?} is not a consumer name (1-64 of A-Z a-z 0-9 - _)"),
        ));
    }
    if env.get("NATS_URL").is_none() {
        return Err(SettingsError::new(
            "LEADERBOARD_CONSUMER",
            "needs NATS_URL: the leaderboard is kept from the game event stream",
        ));
    }
    let subject = env.get("LEADERBOARD_SUBJECT").unwrap_or(DEFAULT_SUBJECT);
    if !valid_subject(subject) {
        return Err(SettingsError::new(
            "LEADERBOARD_SUBJECT",
            format!("{subject:?} is not game.exited.* or game.exited.<region>"),
        ));
    }
    Ok(Some(crate::leaderboard::LeaderboardSettings {
        consumer: consumer.to_owned(),
        subject: subject.to_owned(),
        ack_wait: crate::leaderboard::consumer::ACK_WAIT,
    }))
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
            ("TLS_CERT_FILE", "/etc/origin/cert.pem"),
            ("TLS_RELOAD_SECONDS", "0"),
            ("NATS_URL", "http://127.0.0.1:4222"),
            ("NATS_URL", "nats://:4222"),
        ];
        for (variable, value) in cases {
            let err = Settings::from_map(&vars(&[(variable, value)])).unwrap_err();
            // A variable that needs its partner names the missing partner.
            let expected = match variable {
                "CASSANDRA_USERNAME" => "CASSANDRA_PASSWORD",
                "EDGE_NOTIFY_URL" => "EDGE_NOTIFY_SECRET",
                "TLS_CERT_FILE" => "TLS_KEY_FILE",
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
