//! Runtime settings through the admin API, on three origins sharing one keyspace (of their
//! own: a start limit stored in the keyspace the other tests share would reach their origins
//! too): a changed `RATE_LIMIT_START` turns starts away on all three within 5 s without a
//! restart; an invalid value is refused naming it and changes nothing; a forged call is
//! refused; a rollback restores the old value everywhere; two writers never share a version.

use std::time::{Duration, Instant};

use origin::runtime::{CassandraSettingsStore, SettingsStore, StoredVersion};
use serde_json::{Value, json};

use crate::common::{TestApp, settings_with, spawn_app_with, unique_user};

const TOKEN: &str = "settings-test-admin-token-0123456789abcdef";

/// How long a change may take to reach every origin.
const WITHIN: Duration = Duration::from_secs(5);

fn fresh_keyspace() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("settings_{}_{:x}", std::process::id(), nanos & 0xffff_ffff)
}

/// Three origins (eu, us, ap) on one fresh keyspace, starts unlimited by their environment.
async fn three_origins() -> (String, Vec<TestApp>) {
    let keyspace = fresh_keyspace();
    let mut apps = Vec::new();
    for region in ["eu", "us", "ap"] {
        let settings = settings_with(
            region,
            &[
                ("CASSANDRA_KEYSPACE", keyspace.as_str()),
                ("ADMIN_TOKEN", TOKEN),
                ("RATE_LIMIT_START", "off"),
            ],
        );
        apps.push(spawn_app_with(settings).await);
    }
    (keyspace, apps)
}

/// An admin call with `authorization` (None: no header).
async fn admin(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn change(app: &TestApp, patch: Value) -> (u16, Value) {
    admin(
        app,
        "PATCH",
        "/admin/settings",
        Some(&bearer()),
        Some(&patch),
    )
    .await
}

async fn read(app: &TestApp) -> Value {
    let (status, body) = admin(app, "GET", "/admin/settings", Some(&bearer()), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The status of one start by a new user.
async fn start_status(app: &TestApp) -> u16 {
    app.start(&unique_user("settings")).await.0
}

/// Starts on `app` until one is refused 429; how long that took, or panics after [`WITHIN`].
async fn until_refused(app: &TestApp, since: Instant) -> Duration {
    loop {
        let status = start_status(app).await;
        if status == 429 {
            return since.elapsed();
        }
        assert!(status < 300, "start answered {status}");
        assert!(
            since.elapsed() < WITHIN,
            "{}: no start was refused within {WITHIN:?} of the change",
            app.address
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts on `app` until five in a row succeed; panics after [`WITHIN`].
async fn until_unlimited(app: &TestApp, since: Instant) -> Duration {
    let mut in_a_row = 0;
    while in_a_row < 5 {
        if start_status(app).await < 300 {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            assert!(
                since.elapsed() < WITHIN,
                "{}: starts still refused {WITHIN:?} after the rollback",
                app.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    since.elapsed()
}

/// The value of the sample of `metric` whose labels contain `label` (0 when absent).
fn sample(metrics: &str, metric: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_start_limit_changed_through_the_admin_api_reaches_every_origin_and_rolls_back() {
    let (_keyspace, apps) = three_origins().await;
    for app in &apps {
        for _ in 0..5 {
            assert!(
                start_status(app).await < 300,
                "unlimited by the environment"
            );
        }
    }
    let before = read(&apps[0]).await;
    assert_eq!(before["version"], 0, "{before}");
    assert_eq!(before["effective"]["RATE_LIMIT_START"], "off");

    // A budget of 2 starts per client, refilled over an hour: the third start is refused.
    let (status, body) = change(&apps[0], json!({"RATE_LIMIT_START": "2/3600"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["overrides"], json!({"RATE_LIMIT_START": "2/3600"}));
    assert_eq!(body["effective"]["RATE_LIMIT_START"], "2/3600");
    let changed = Instant::now();
    for app in &apps {
        let took = until_refused(app, changed).await;
        println!("429 on {} {took:?} after the change", app.address);
    }
    for app in &apps {
        let view = read(app).await;
        assert_eq!(
            (view["version"].as_i64(), view["storedVersion"].as_i64()),
            (Some(1), Some(1))
        );
    }

    // Invalid values: refused naming the variable, nothing stored, the limit still holds.
    for (patch, field) in [
        (json!({"RATE_LIMIT_START": "lots"}), "RATE_LIMIT_START"),
        (json!({"RATE_LIMIT_START": "0/60"}), "RATE_LIMIT_START"),
        (json!({"TRUSTED_PROXIES": "0.0.0.0/0"}), "TRUSTED_PROXIES"),
        (json!({"TICK_MS": 0, "RATE_LIMIT_START": "off"}), "TICK_MS"),
    ] {
        let (status, body) = change(&apps[1], patch.clone()).await;
        assert_eq!(status, 422, "{patch}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    let (status, body) = admin(&apps[1], "PATCH", "/admin/settings", Some(&bearer()), None).await;
    assert_eq!(status, 415, "a PATCH without a JSON body: {body}");

    // Forged calls: no token, a wrong one, another scheme.
    let forged = json!({"RATE_LIMIT_START": "off"});
    for (authorization, expected) in [
        (None, 401),
        (Some("Bearer not-the-admin-token"), 403),
        (Some(format!("Bearer {TOKEN}x").as_str()), 403),
        (Some(format!("Basic {TOKEN}").as_str()), 401),
    ] {
        let (status, body) = admin(
            &apps[2],
            "PATCH",
            "/admin/settings",
            authorization,
            Some(&forged),
        )
        .await;
        assert_eq!(status, expected, "{authorization:?}: {body}");
        let (status, _) = admin(
            &apps[2],
            "POST",
            "/admin/settings/rollback",
            authorization,
            None,
        )
        .await;
        assert_eq!(status, expected, "rollback with {authorization:?}");
        let (status, _) = admin(&apps[2], "GET", "/admin/settings", authorization, None).await;
        assert_eq!(status, expected, "read with {authorization:?}");
    }

    // Nothing of that was stored or applied.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for app in &apps {
        let view = read(app).await;
        assert_eq!(view["storedVersion"], 1, "{view}");
        assert_eq!(view["effective"]["RATE_LIMIT_START"], "2/3600");
        assert_eq!(
            start_status(app).await,
            429,
            "{}: the old limit holds",
            app.address
        );
    }

    // The rollback stores the content before version 1 (none: the environment's `off`).
    let (status, body) = admin(
        &apps[2],
        "POST",
        "/admin/settings/rollback",
        Some(&bearer()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(body["overrides"], json!({}));
    assert_eq!(body["effective"]["RATE_LIMIT_START"], "off");
    let rolled_back = Instant::now();
    for app in &apps {
        let took = until_unlimited(app, rolled_back).await;
        println!(
            "starts unlimited on {} {took:?} after the rollback",
            app.address
        );
    }

    // Counted on the origin that took each call; every origin reports the version it applies.
    let metrics: Vec<String> = futures::future::join_all(apps.iter().map(TestApp::metrics)).await;
    let total = |outcome: &str| {
        metrics
            .iter()
            .map(|m| {
                sample(
                    m,
                    "seedsync_settings_changes_total",
                    &format!("outcome=\"{outcome}\""),
                )
            })
            .sum::<f64>()
    };
    assert_eq!(total("changed"), 1.0);
    assert_eq!(total("rolled_back"), 1.0);
    assert_eq!(total("invalid"), 5.0);
    assert_eq!(total("unauthorized"), 4.0);
    assert_eq!(total("forbidden"), 4.0);
    for m in &metrics {
        assert_eq!(
            sample(m, "seedsync_settings_version", "region="),
            2.0,
            "{m}"
        );
    }
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_writers_never_share_a_version_and_defaults_follow() {
    let (keyspace, apps) = three_origins().await;
    let store = CassandraSettingsStore::connect(apps[0].store.clone(), &keyspace)
        .await
        .unwrap();
    // Two writers of the same next version: exactly one is stored.
    let version = |by: &str| StoredVersion {
        version: 1,
        content: [("TICK_MS".to_owned(), "40".to_owned())].into(),
        changed_by: by.to_owned(),
        changed_at_ms: crate::common::now_ms(),
    };
    let (first, second) = (version("a"), version("b"));
    let (a, b) = tokio::join!(
        store.insert_if_absent(&first),
        store.insert_if_absent(&second)
    );
    assert!(
        a.unwrap() ^ b.unwrap(),
        "exactly one writer makes version 1"
    );
    let stored = store.latest().await.unwrap().unwrap();
    assert_eq!(stored.version, 1);

    // Eight changes at once through three origins: each stored change has a version of its
    // own (a lost race is retried from the winner's version), none lost.
    let calls = (0..8).map(|i| {
        let app = &apps[i % 3];
        async move { change(app, json!({"BREAK_EVERY": 100 + i})).await }
    });
    let answers = futures::future::join_all(calls).await;
    let mut versions: Vec<i64> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body["version"].as_i64().unwrap())
        .collect();
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 409, "{status} {body}");
    }
    versions.sort_unstable();
    let stored = versions.len();
    versions.dedup();
    assert_eq!(
        versions.len(),
        stored,
        "two changes got one version: {answers:?}"
    );
    assert_eq!(
        store.latest().await.unwrap().unwrap().version,
        1 + stored as i64,
        "every answered change is stored"
    );

    // New games' defaults follow on another origin.
    let (status, body) = change(
        &apps[0],
        json!({"TICK_MS": 40, "DEFAULT_ALGORITHM": "lcg32", "BREAK_EVERY": null}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let since = Instant::now();
    loop {
        let (status, game) = apps[2].start(&unique_user("defaults")).await;
        assert!(status < 300, "{game}");
        if game["tickMs"] == 40 && game["algorithm"] == "lcg32" {
            assert_eq!(game["breakEvery"], 50, "the environment's default again");
            break;
        }
        assert!(since.elapsed() < WITHIN, "defaults not applied: {game}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for app in apps {
        app.stop().await;
    }
}
