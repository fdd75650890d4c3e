//! A real origin's `/metrics` against the operations files: promtool (built by
//! `scripts/prometheus.sh build-promtool`) accepts the exposition, and every metric the
//! Prometheus rules (deploy/prometheus) and the Grafana dashboards (deploy/grafana) use is
//! one the origin exposes. The rules' and dashboards' own checks run in `make test`'s `ops`
//! stage (scripts/ops-check.sh); this is the half that needs a running origin.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{TestApp, settings_with, spawn_app_with};

/// Used by the rules or dashboards but absent from a fresh origin's scrape, each for a reason.
const MAY_BE_ABSENT: [(&str, &str); 2] = [
    (
        "seedsync_outbox_published_total",
        "a series per event type, once the relay (NATS_URL) publishes one (it::events covers it)",
    ),
    (
        "seedsync_cassandra_errors_total",
        "a series per operation appears at its first failure (it::storage_failure covers it)",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL").map_or_else(
        || repo().join(".cache/bin/promtool-v0.316.0"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/prometheus.sh build-promtool` (make test does)",
        path.display()
    );
    path
}

/// The `seedsync_` metric names a rules or dashboard text uses (not the `seedsync:` recorded
/// ones), with histogram suffixes taken off.
fn names_used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("seedsync_") {
        let start = i + at;
        let before_ok = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        if before_ok {
            let name = &text[start..end];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(base.to_owned());
        }
        i = end;
    }
    names
}

/// The metric families of an exposition (its `# TYPE` lines).
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

async fn scrape_until(app: &TestApp, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.metrics().await;
        if text.contains(wanted) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn names_are_found_in_rule_and_dashboard_text() {
    let used = names_used(
        "rate(seedsync_http_request_duration_seconds_bucket{x=\"1\"}[5m]) seedsync:start_latency_seconds:p95_5m \
         min by (peer) (seedsync_region_heartbeat_age_seconds) not_seedsync_x",
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "seedsync_http_request_duration_seconds",
            "seedsync_region_heartbeat_age_seconds"
        ]
    );
}

#[tokio::test]
async fn a_real_origin_exposes_what_the_rules_and_dashboards_use_and_promtool_accepts_it() {
    // Its own keyspace: this origin joins the registry (heartbeats every second), which the
    // other tests' shared keyspace must not see.
    let keyspace = format!("test_ops_{}", std::process::id());
    let mut settings = settings_with(
        "eu",
        &[
            ("CASSANDRA_KEYSPACE", keyspace.as_str()),
            ("REGISTER_INTERVAL_SECONDS", "1"),
        ],
    );
    settings.registry.heartbeat = true;
    let app = spawn_app_with(settings).await;
    let (status, _) = app.start("ops-metrics").await;
    assert_eq!(status, 201);
    let text = scrape_until(&app, "seedsync_region_heartbeat_age_seconds{").await;
    app.stop().await;

    let file =
        std::env::temp_dir().join(format!("seedsync-ops-metrics-{}.txt", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let output = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run promtool");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "promtool check metrics refused the origin's /metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let have = exposed(&text);
    let mut used = BTreeSet::new();
    used.extend(names_used(
        &std::fs::read_to_string(repo().join("deploy/prometheus/seedsync.rules.yml")).unwrap(),
    ));
    let dashboards = repo().join("deploy/grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        used.extend(names_used(
            &std::fs::read_to_string(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(used.len() > 20, "too few names found: {used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !have.contains(*n) && !MAY_BE_ABSENT.iter().any(|(a, _)| a == n))
        .collect();
    assert!(
        missing.is_empty(),
        "used by the rules or dashboards but not exposed by the origin: {missing:?}\nexposed: {have:?}"
    );
}
