//! The outbox's settings: where game events go (`NATS_URL`, `NATS_STREAM_REPLICAS`,
//! `NATS_SYNC`); unset `NATS_URL` means no events.

use kernel::SettingsError;

use crate::env::{Env, valid_host_port};

/// Where game events go.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for EventSettings {
    // The URL may carry credentials (user:password@): printed without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings")
            .field("nats_url", &kernel::redact_url(&self.nats_url))
            .field("stream_replicas", &self.stream_replicas)
            .field("broker_sync", &self.broker_sync)
            .finish()
    }
}

/// Checks `NATS_URL`: comma-separated `nats://host:port`, `tls://host:port` or `host:port`.
fn parse_nats_url(value: &str) -> Result<String, String> {
    let mut servers = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let address = match part.split_once("://") {
            Some(("nats" | "tls", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{:?}: scheme {scheme:?} is not nats:// or tls://",
                    kernel::redact_url(part)
                ));
            }
            None => part,
        };
        // Credentials in the URL (user:password@) are allowed; the host:port follows the @.
        let host_port = address.rsplit_once('@').map_or(address, |(_, hp)| hp);
        if !valid_host_port(host_port.trim_end_matches('/')) {
            return Err(format!(
                "{:?} is not a NATS URL like nats://127.0.0.1:4222",
                kernel::redact_url(part)
            ));
        }
        servers.push(part.to_owned());
    }
    if servers.is_empty() {
        return Err("no server given".into());
    }
    Ok(servers.join(","))
}

impl EventSettings {
    /// Reads the `NATS_*` variables: `None` when `NATS_URL` is unset.
    pub fn from_env(env: &Env<'_>) -> Result<Option<EventSettings>, SettingsError> {
        let Some(url) = env.get("NATS_URL") else {
            return Ok(None);
        };
        Ok(Some(EventSettings {
            nats_url: parse_nats_url(url)
                .map_err(|message| SettingsError::new("NATS_URL", message))?,
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
            .map_err(|message| SettingsError::new("NATS_SYNC", message))?,
        }))
    }
}
