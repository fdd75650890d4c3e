//! The store's settings: how to reach Cassandra (`CASSANDRA_*`), parsed here so the store owns
//! them and [`crate::config`] only assembles the sections.

use std::time::Duration;

use kernel::{Secret, SettingsError};
use scylla::frame::types::{Consistency, SerialConsistency};

use crate::env::{Env, valid_host_port};

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
    pub credentials: Option<(String, Secret)>,
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
    /// `SCHEMA_AUTO_MIGRATE`: whether a serving origin applies pending schema migrations
    /// itself at start (development default) instead of only checking the version and
    /// refusing to start until `origin migrate` ran (production: always off).
    pub auto_migrate: bool,
    /// `CASSANDRA_TLS_CA_FILE` (and the optional client pair): every connection to the
    /// cluster speaks TLS; `None`: plain CQL.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl CassandraSettings {
    /// Reads the `CASSANDRA_*` variables.
    pub fn from_env(env: &Env<'_>) -> Result<CassandraSettings, SettingsError> {
        let hosts: Vec<String> = env
            .get("CASSANDRA_HOSTS")
            .unwrap_or("127.0.0.1:9042")
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(bad) = hosts.iter().find(|h| !valid_host_port(h)) {
            return Err(SettingsError::new(
                "CASSANDRA_HOSTS",
                format!("{bad:?} is not host:port (comma-separated list)"),
            ));
        }
        if hosts.is_empty() {
            return Err(SettingsError::new("CASSANDRA_HOSTS", "no hosts given"));
        }
        let consistency =
            parse_consistency(env.get("CASSANDRA_CONSISTENCY").unwrap_or("LOCAL_QUORUM"))
                .map_err(|message| SettingsError::new("CASSANDRA_CONSISTENCY", message))?;
        let replication = Replication::parse(
            env.get("CASSANDRA_REPLICATION")
                .unwrap_or("SimpleStrategy:1"),
        )
        .map_err(|message| SettingsError::new("CASSANDRA_REPLICATION", message))?;
        let timeout_seconds = env.parse(
            "CASSANDRA_TIMEOUT_SECONDS",
            5u64,
            |s| (1..=120).contains(s),
            "1..=120",
        )?;
        Ok(CassandraSettings {
            hosts,
            keyspace: keyspace(env)?,
            credentials: credentials(env)?,
            consistency,
            serial_consistency: serial_consistency(env)?,
            local_dc: env.get("CASSANDRA_LOCAL_DC").map(str::to_owned),
            replication,
            timeout: Duration::from_secs(timeout_seconds),
            auto_migrate: auto_migrate(env)?,
            tls: cassandra_tls(env)?,
        })
    }
}

/// `CASSANDRA_KEYSPACE`: a CQL identifier (it is spliced into `CREATE KEYSPACE`).
fn keyspace(env: &Env<'_>) -> Result<String, SettingsError> {
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
        return Err(SettingsError::new(
            "CASSANDRA_KEYSPACE",
            format!("{keyspace:?} must be a letter then up to 47 letters, digits or '_'"),
        ));
    }
    Ok(keyspace)
}

/// `SCHEMA_AUTO_MIGRATE`: `true` by default in development (`make dev` and the tests need no
/// extra step), `false` by default with `SEEDSYNC_ENV=production`, where `true` is refused:
/// there the schema changes only through `origin migrate` (one job per deploy, with DDL
/// rights the serving role does not need), never as a side effect of an origin starting.
fn auto_migrate(env: &Env<'_>) -> Result<bool, SettingsError> {
    let production = env.get("SEEDSYNC_ENV").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "production" | "prod"
        )
    });
    let value = match env.get("SCHEMA_AUTO_MIGRATE") {
        None => !production,
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                return Err(SettingsError::new(
                    "SCHEMA_AUTO_MIGRATE",
                    format!("{raw:?} is not true or false"),
                ));
            }
        },
    };
    if value && production {
        return Err(SettingsError::new(
            "SCHEMA_AUTO_MIGRATE",
            "must not be true with SEEDSYNC_ENV=production: run `origin migrate` (a one-off job \
             per deploy) and let serving origins only check the schema version",
        ));
    }
    Ok(value)
}

/// `CASSANDRA_USERNAME` and `CASSANDRA_PASSWORD`: both or neither.
fn credentials(env: &Env<'_>) -> Result<Option<(String, Secret)>, SettingsError> {
    match (env.get("CASSANDRA_USERNAME"), env.get("CASSANDRA_PASSWORD")) {
        (Some(user), Some(password)) => Ok(Some((user.to_owned(), Secret::new(password)))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(SettingsError::new(
            "CASSANDRA_PASSWORD",
            "must be set when CASSANDRA_USERNAME is",
        )),
        (None, Some(_)) => Err(SettingsError::new(
            "CASSANDRA_USERNAME",
            "must be set when CASSANDRA_PASSWORD is",
        )),
    }
}

/// The CA of the cluster's node certificates.
const TLS_CA_VAR: &str = "CASSANDRA_TLS_CA_FILE";
/// The client certificate chain, for clusters that require client certificates.
const TLS_CERT_VAR: &str = "CASSANDRA_TLS_CERT_FILE";
/// The client certificate's private key.
const TLS_KEY_VAR: &str = "CASSANDRA_TLS_KEY_FILE";

/// TLS to Cassandra (client encryption), on when `CASSANDRA_TLS_CA_FILE` is set: rustls on
/// ring trusting only that file's roots (a cluster's CA is private as a rule), the node's
/// certificate checked against the address the driver dialled (the driver names nodes by IP,
/// so node certificates need IP SANs). `CASSANDRA_TLS_CERT_FILE` and `CASSANDRA_TLS_KEY_FILE`
/// add a client certificate for `require_client_auth` clusters.
fn cassandra_tls(
    env: &Env<'_>,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, SettingsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read = |variable: &'static str| -> Result<Option<Vec<u8>>, SettingsError> {
        let Some(path) = env.get(variable).map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        std::fs::read(path)
            .map(Some)
            .map_err(|e| SettingsError::new(variable, format!("cannot read {path}: {e}")))
    };
    let certs = |variable: &'static str, pem: &[u8]| {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SettingsError::new(variable, format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(SettingsError::new(
                variable,
                "holds no certificate (expected PEM BEGIN CERTIFICATE blocks)",
            ));
        }
        Ok(certs)
    };
    let ca = read(TLS_CA_VAR)?;
    let client = (read(TLS_CERT_VAR)?, read(TLS_KEY_VAR)?);
    let Some(ca) = ca else {
        if client.0.is_some() || client.1.is_some() {
            return Err(SettingsError::new(
                TLS_CA_VAR,
                format!(
                    "must be set with {TLS_CERT_VAR}/{TLS_KEY_VAR} (TLS needs the cluster's CA)"
                ),
            ));
        }
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(TLS_CA_VAR, &ca)? {
        roots
            .add(cert)
            .map_err(|e| SettingsError::new(TLS_CA_VAR, format!("unusable CA certificate: {e}")))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SettingsError::new(TLS_CA_VAR, e.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certs(TLS_CERT_VAR, &cert)?;
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
                SettingsError::new(TLS_KEY_VAR, format!("holds no usable PEM private key: {e}"))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                SettingsError::new(TLS_KEY_VAR, format!("unusable client pair: {e}"))
            })?
        }
        (Some(_), None) => {
            return Err(SettingsError::new(
                TLS_KEY_VAR,
                format!("must be set when {TLS_CERT_VAR} is"),
            ));
        }
        (None, Some(_)) => {
            return Err(SettingsError::new(
                TLS_CERT_VAR,
                format!("must be set when {TLS_KEY_VAR} is"),
            ));
        }
    };
    Ok(Some(std::sync::Arc::new(config)))
}

fn serial_consistency(env: &Env<'_>) -> Result<SerialConsistency, SettingsError> {
    match env
        .get("CASSANDRA_SERIAL_CONSISTENCY")
        .unwrap_or("SERIAL")
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "SERIAL" => Ok(SerialConsistency::Serial),
        "LOCAL_SERIAL" => Ok(SerialConsistency::LocalSerial),
        other => Err(SettingsError::new(
            "CASSANDRA_SERIAL_CONSISTENCY",
            format!("{other:?} is not SERIAL or LOCAL_SERIAL"),
        )),
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

    fn auto(vars: &[(&str, &str)]) -> Result<bool, SettingsError> {
        let map = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        auto_migrate(&Env::new(&map))
    }

    #[test]
    fn auto_migrate_is_for_development_only() {
        assert!(auto(&[]).unwrap());
        assert!(!auto(&[("SCHEMA_AUTO_MIGRATE", "false")]).unwrap());
        assert!(!auto(&[("SEEDSYNC_ENV", "production")]).unwrap());
        assert!(
            !auto(&[
                ("SEEDSYNC_ENV", "production"),
                ("SCHEMA_AUTO_MIGRATE", "off")
            ])
            .unwrap()
        );
        let refused = auto(&[
            ("SEEDSYNC_ENV", "production"),
            ("SCHEMA_AUTO_MIGRATE", "true"),
        ])
        .unwrap_err();
        assert_eq!(refused.variable, "SCHEMA_AUTO_MIGRATE");
        assert!(refused.to_string().contains("origin migrate"));
        assert!(auto(&[("SCHEMA_AUTO_MIGRATE", "maybe")]).is_err());
    }
}
