//! The origin -> Cassandra hop over TLS (issue 20), against the TLS-only node of
//! `scripts/cassandra.sh start-tls` (127.0.0.1:9142, `client_encryption_options.optional:
//! false`, a test CA made by keytool and exported as PEM). Ignored by default, like `events::`:
//! `make test` starts that node once for this stage and runs `-- --ignored tls_cassandra::`.
//!
//! `CASSANDRA_TLS_DIR` names the node's run dir (default `.run/cassandra-tls` of this checkout),
//! whose `ca.pem` the origin trusts through `CASSANDRA_TLS_CA_FILE`.

use std::collections::HashMap;
use std::path::PathBuf;

use origin::config::Settings;
use origin::store::Store;
use serde_json::json;

use crate::common::{self, KEYSPACE, unique_user};

/// The TLS node's CQL address.
const TLS_HOSTS: &str = "127.0.0.1:9142";

/// The PEM CA of the TLS node's certificate.
fn node_ca() -> PathBuf {
    let dir = std::env::var("CASSANDRA_TLS_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run/cassandra-tls"),
        PathBuf::from,
    );
    let ca = dir.join("ca.pem");
    assert!(
        ca.is_file(),
        "{} is missing: run `scripts/cassandra.sh start-tls` (make test does for this stage)",
        ca.display()
    );
    ca
}

/// The test settings of [`common::settings`], on the TLS node, plus `extra`.
fn settings(extra: &[(&str, &str)]) -> Settings {
    origin::tls::install_default_provider();
    let mut vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("REGION", "eu"),
        ("CASSANDRA_HOSTS", TLS_HOSTS),
        ("CASSANDRA_TIMEOUT_SECONDS", "10"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert("CASSANDRA_KEYSPACE".into(), KEYSPACE.clone());
    vars.extend(common::test_vars());
    common::test_wiring(Settings::from_map(&vars).expect("test settings are valid"))
}

#[tokio::test]
#[ignore = "needs the TLS-only Cassandra node: scripts/cassandra.sh start-tls"]
async fn an_origin_trusting_the_cluster_ca_plays_over_tls() {
    let ca = node_ca();
    let settings = settings(&[("CASSANDRA_TLS_CA_FILE", ca.to_str().unwrap())]);
    assert!(settings.cassandra.tls.is_some());
    let app = common::spawn_app_with(settings).await;
    let user = unique_user("tls-cql");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    let (status, view) = app
        .get(&format!("/game/{}", game["gameId"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{view}");
    let (status, exited) = app
        .post(
            "/game/exit",
            &json!({"gameId": game["gameId"], "userId": user}),
        )
        .await;
    assert_eq!(status, 200, "{exited}");
    app.stop().await;
}

#[tokio::test]
#[ignore = "needs the TLS-only Cassandra node: scripts/cassandra.sh start-tls"]
async fn plain_cql_to_the_tls_node_fails_naming_the_variable() {
    node_ca();
    let settings = settings(&[]);
    assert!(settings.cassandra.tls.is_none());
    let started = std::time::Instant::now();
    let error = Store::connect(&settings.cassandra)
        .await
        .expect_err("plain CQL was accepted by the TLS-only node");
    let message = error.to_string();
    assert!(message.contains("CASSANDRA_TLS_CA_FILE"), "{message}");
    assert!(message.contains(TLS_HOSTS), "{message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs the TLS-only Cassandra node: scripts/cassandra.sh start-tls"]
async fn a_cluster_certificate_from_another_ca_is_refused() {
    node_ca();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let path = std::env::temp_dir().join(format!(
        "seedsync-other-ca-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, other.cert.pem()).unwrap();
    let settings = settings(&[("CASSANDRA_TLS_CA_FILE", path.to_str().unwrap())]);
    let result = Store::connect(&settings.cassandra).await;
    std::fs::remove_file(&path).unwrap();
    let message = result
        .expect_err("an untrusted node certificate was accepted")
        .to_string();
    assert!(message.contains("CASSANDRA_TLS_CA_FILE"), "{message}");
}
