//! Typed settings read from environment variables and validated at start-up.
//!
//! A bad value stops the process with a message that names the variable, so a typo in a
//! deployment never becomes a half-working origin.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use scylla::frame::types::{Consistency, SerialConsistency};
use shared_engine::DEFAULT_BREAK_EVERY;

use api::limits::{MAX_BREAK_EVERY, MAX_TICK_MS, MIN_BREAK_EVERY, MIN_TICK_MS};
use api::{BreakEvery, RegionName, TickMs};
use kernel::SettingsError;

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
    "START_DELAY_MS",
    "TICK_MS",
    "BREAK_EVERY",
    "REQUEST_TIMEOUT_SECONDS",
    "NATS_URL",
    "NATS_STREAM_REPLICAS",
    "NATS_SYNC",
    "REGISTER_INTERVAL_SECONDS",
    "PUBLIC_URL",
    "ADMIN_TOKEN",
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
];

/// How the keyspace replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with a replication factor (single datacenter, local development).
    Simple(u32),
    /// `NetworkTopologyStrategy` with a replication factor per datacenter.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// The CQL map literal for `CREATE KEYSPACE ... WITH replication = ...`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(rf) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut cql = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    cql.push_str(&format!(", '{dc}': {rf}"));
                }
                cql.push('}');
                cql
            }
        }
    }

    fn parse(value: &str) -> Result<Replication, String> {
        const HINT: &str = "expected `SimpleStrategy:RF` or `dc:RF,dc:RF,...`";
        if let Some(rf) = value.strip_prefix("SimpleStrategy:") {
            return Ok(Replication::Simple(
                parse_rf(rf).map_err(|e| format!("{e}; {HINT}"))?,
            ));
        }
        let mut dcs = Vec::new();
        for part in value.split(',') {
            let (dc, rf) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?}: {HINT}"))?;
            let dc = dc.trim();
            if dc.is_empty()
                || !dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "datacenter name {dc:?} must be letters, digits, '_' or '-'"
                ));
            }
            dcs.push((dc.to_owned(), parse_rf(rf.trim())?));
        }
        Ok(Replication::NetworkTopology(dcs))
    }
}

fn parse_rf(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(rf @ 1..=15) => Ok(rf),
        _ => Err(format!("replication factor {value:?} must be 1..=15")),
    }
}

/// How to reach and use Cassandra.
#[derive(Debug, Clone)]
pub struct CassandraSettings {
    /// Contact points, `host:port`.
    pub hosts: Vec<String>,
    /// Keyspace holding every table of this service (created if missing).
    pub keyspace: String,
    /// Username and password, if the cluster authenticates.
    pub credentials: Option<(String, String)>,
    /// Consistency of every read and write.
    pub consistency: Consistency,
    /// Consistency of the LWTs that keep one active game per user and one game per idempotency
    /// key. `SERIAL` (default) makes them hold across datacenters (regions); `LOCAL_SERIAL` is
    /// cheaper but only holds within one, for deployments that pin each user to a region.
    pub serial_consistency: SerialConsistency,
    /// The datacenter to prefer (this region's), if any.
    pub local_dc: Option<String>,
    /// Replication of the keyspace when this service creates it.
    pub replication: Replication,
    /// Client-side timeout of each request to Cassandra.
    pub timeout: Duration,
}

/// What new games look like when a request does not say.
#[derive(Debug, Clone, Copy)]
pub struct GameDefaults {
    /// Countdown before step 0.
    pub start_delay_ms: u32,
    /// Milliseconds per step.
    pub tick_ms: TickMs,
    /// Break odds.
    pub break_every: BreakEvery,
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
    /// Storage.
    pub cassandra: CassandraSettings,
    /// Defaults for new games.
    pub games: GameDefaults,
    /// A request that takes longer is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Owner tokens: the keyring and whether `/v1` stops need them.
    pub auth: crate::auth::AuthSettings,
    /// Per-client budgets and the in-flight cap.
    pub limits: crate::limits::LimitSettings,
    /// The live region registry (heartbeats, public URL, admin token).
    pub registry: crate::registry::RegistrySettings,
    /// Game events (`NATS_URL` set): the outbox and its relay to NATS JetStream.
    pub events: Option<EventSettings>,
    /// Exit notices to the edge's live rooms (`EDGE_NOTIFY_URL` and `EDGE_NOTIFY_SECRET` set).
    pub notify: Option<crate::notify::NotifySettings>,
}

/// Where game events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    /// NATS server URL(s), comma-separated (`nats://host:4222`).
    pub nats_url: String,
    /// `NATS_STREAM_REPLICAS`: the copies the `GAME_EVENTS` stream keeps (3 on a production
    /// cluster); unset keeps whatever the stream has (1 when this origin creates it).
    pub stream_replicas: Option<usize>,
    /// `NATS_SYNC`: the broker's JetStream `sync_interval` (`always`, or a duration like `1s`,
    /// the default, as `scripts/nats.sh` and `docker-compose.yml` run it). The relay keeps a
    /// published event's row until the broker has surely fsynced it.
    pub broker_sync: std::time::Duration,
}

/// Checks `NATS_URL`: comma-separated `nats://host:port`, `tls://host:port` or `host:port`.
fn parse_nats_url(value: &str) -> Result<String, String> {
    let mut servers = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let address = match part.split_once("://") {
            Some(("nats" | "tls", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{part:?}: scheme {scheme:?} is not nats:// or tls://"
                ));
            }
            None => part,
        };
        // Credentials in the URL (user:password@) are allowed; the host:port follows the @.
        let host_port = address.rsplit_once('@').map_or(address, |(_, hp)| hp);
        if !valid_host_port(host_port.trim_end_matches('/')) {
            return Err(format!(
                "{part:?} is not a NATS URL like nats://127.0.0.1:4222"
            ));
        }
        servers.push(part.to_owned());
    }
    if servers.is_empty() {
        return Err("no server given".into());
    }
    Ok(servers.join(","))
}

/// Reads variables from a map, so tests need not touch the process environment.
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, variable: &'static str) -> Option<&str> {
        self.0
            .get(variable)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
        expected: &str,
    ) -> Result<T, SettingsError> {
        let Some(raw) = self.get(variable) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if valid(&value) => Ok(value),
            _ => Err(SettingsError {
                variable,
                message: format!("{raw:?} is not {expected}"),
            }),
        }
    }

    /// An integer variable validated by one of the contract's constructors (`TickMs::parse`,
    /// ...), so the origin's defaults follow the same rule as clients' values.
    fn number<T>(
        &self,
        variable: &'static str,
        default: u64,
        parse: impl Fn(u64) -> Result<T, api::ids::InvalidValue>,
        expected: &str,
    ) -> Result<T, SettingsError> {
        let value = self.parse(variable, default, |_| true, expected)?;
        parse(value).map_err(|_| SettingsError {
            variable,
            message: format!("{value} is not {expected}"),
        })
    }
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_map(&std::env::vars().collect())
    }

    /// Settings from a map of variables (missing or empty means default).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let env = Env(vars);
        let host = env.parse(
            "HOST",
            IpAddr::from([0, 0, 0, 0]),
            |_| true,
            "an IP address",
        )?;
        let port = env.parse("PORT", 8080u16, |_| true, "a port number (0-65535)")?;
        let region =
            RegionName::parse(env.get("REGION").unwrap_or("eu")).map_err(|e| SettingsError {
                variable: "REGION",
                message: e.to_string(),
            })?;
        let hosts: Vec<String> = env
            .get("CASSANDRA_HOSTS")
            .unwrap_or("127.0.0.1:9042")
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(bad) = hosts.iter().find(|h| !valid_host_port(h)) {
            return Err(SettingsError {
                variable: "CASSANDRA_HOSTS",
                message: format!("{bad:?} is not host:port (comma-separated list)"),
            });
        }
        if hosts.is_empty() {
            return Err(SettingsError {
                variable: "CASSANDRA_HOSTS",
                message: "no hosts given".into(),
            });
        }
        let keyspace = env
            .get("CASSANDRA_KEYSPACE")
            .unwrap_or("seedsync")
            .to_owned();
        let keyspace_ok = keyspace.len() <= 48
            && keyspace.starts_with(|c: char| c.is_ascii_alphabetic())
            && keyspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !keyspace_ok {
            return Err(SettingsError {
                variable: "CASSANDRA_KEYSPACE",
                message: format!(
                    "{keyspace:?} must be a letter then up to 47 letters, digits or '_'"
                ),
            });
        }
        let credentials = match (env.get("CASSANDRA_USERNAME"), env.get("CASSANDRA_PASSWORD")) {
            (Some(user), Some(password)) => Some((user.to_owned(), password.to_owned())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError {
                    variable: "CASSANDRA_PASSWORD",
                    message: "must be set when CASSANDRA_USERNAME is".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError {
                    variable: "CASSANDRA_USERNAME",
                    message: "must be set when CASSANDRA_PASSWORD is".into(),
                });
            }
        };
        let consistency = parse_consistency(
            env.get("CASSANDRA_CONSISTENCY").unwrap_or("LOCAL_QUORUM"),
        )
        .map_err(|message| SettingsError {
            variable: "CASSANDRA_CONSISTENCY",
            message,
        })?;
        let serial_consistency = match env
            .get("CASSANDRA_SERIAL_CONSISTENCY")
            .unwrap_or("SERIAL")
            .trim()
            .to_ascii_uppercase()
            .as_str()
        {
            "SERIAL" => SerialConsistency::Serial,
            "LOCAL_SERIAL" => SerialConsistency::LocalSerial,
            other => {
                return Err(SettingsError {
                    variable: "CASSANDRA_SERIAL_CONSISTENCY",
                    message: format!("{other:?} is not SERIAL or LOCAL_SERIAL"),
                });
            }
        };
        let local_dc = env.get("CASSANDRA_LOCAL_DC").map(str::to_owned);
        let replication = Replication::parse(
            env.get("CASSANDRA_REPLICATION")
                .unwrap_or("SimpleStrategy:1"),
        )
        .map_err(|message| SettingsError {
            variable: "CASSANDRA_REPLICATION",
            message,
        })?;
        let timeout_seconds = env.parse(
            "CASSANDRA_TIMEOUT_SECONDS",
            5u64,
            |s| (1..=120).contains(s),
            "1..=120",
        )?;
        let start_delay_ms =
            env.parse("START_DELAY_MS", 3_000u32, |v| *v <= 600_000, "0..=600000")?;
        let tick_ms = env.number(
            "TICK_MS",
            100,
            TickMs::parse,
            &format!("{MIN_TICK_MS}..={MAX_TICK_MS}"),
        )?;
        let break_every = env.number(
            "BREAK_EVERY",
            u64::from(DEFAULT_BREAK_EVERY),
            BreakEvery::parse,
            &format!("{MIN_BREAK_EVERY}..={MAX_BREAK_EVERY}"),
        )?;
        let request_timeout_seconds = env.parse(
            "REQUEST_TIMEOUT_SECONDS",
            10u64,
            |s| (1..=300).contains(s),
            "1..=300",
        )?;
        let events = match env.get("NATS_URL") {
            None => None,
            Some(url) => Some(EventSettings {
                nats_url: parse_nats_url(url).map_err(|message| SettingsError {
                    variable: "NATS_URL",
                    message,
                })?,
                stream_replicas: env
                    .get("NATS_STREAM_REPLICAS")
                    .map(|_| {
                        env.parse(
                            "NATS_STREAM_REPLICAS",
                            1,
                            |n| (1..=events::stream::MAX_REPLICAS).contains(n),
                            "1..=5",
                        )
                    })
                    .transpose()?,
                broker_sync: events::stream::parse_sync_interval(
                    env.get("NATS_SYNC").unwrap_or(events::stream::DEFAULT_SYNC),
                )
                .map_err(|message| SettingsError {
                    variable: "NATS_SYNC",
                    message,
                })?,
            }),
        };
        let registry = crate::registry::RegistrySettings::from_lookup(
            |name| env.get(name).map(str::to_owned),
            host,
            port,
        )?;
        Ok(Settings {
            registry,
            host,
            port,
            region,
            cassandra: CassandraSettings {
                hosts,
                keyspace,
                credentials,
                consistency,
                serial_consistency,
                local_dc,
                replication,
                timeout: Duration::from_secs(timeout_seconds),
            },
            games: GameDefaults {
                start_delay_ms,
                tick_ms,
                break_every,
            },
            request_timeout: Duration::from_secs(request_timeout_seconds),
            events,
            auth: crate::auth::AuthSettings::from_lookup(
                |name| vars.get(name).cloned(),
                crate::auth::random_secret,
            )?,
            limits: crate::limits::LimitSettings::from_lookup(|name| vars.get(name).cloned())?,
            notify: crate::notify::NotifySettings::from_lookup(|name| vars.get(name).cloned())?,
        })
    }
}

fn valid_host_port(value: &str) -> bool {
    match value.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn parse_consistency(value: &str) -> Result<Consistency, String> {
    Ok(match value.trim().to_ascii_uppercase().as_str() {
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        other => {
            return Err(format!(
                "{other:?} is not one of ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
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
    fn replication_forms() {
        assert_eq!(
            Replication::parse("eu:3,us:3,asia:3").unwrap(),
            Replication::NetworkTopology(vec![
                ("eu".into(), 3),
                ("us".into(), 3),
                ("asia".into(), 3)
            ])
        );
        assert_eq!(
            Replication::parse("eu:3, us:1").unwrap().cql(),
            "{'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 1}"
        );
        assert_eq!(
            Replication::Simple(2).cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 2}"
        );
        assert!(Replication::parse("eu'; DROP:1").is_err());
    }
}
