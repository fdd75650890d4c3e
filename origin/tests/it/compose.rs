//! The deployment files checked statically (scripts/compose-test.sh brings the stack up for
//! real): every origin service in docker-compose.yml, and its `migrate` job, must configure a
//! valid production origin, its secrets read from the compose `secrets:` files it mounts.

use std::collections::HashMap;
use std::path::PathBuf;

use origin::config::{Settings, VARIABLES};
use serde_yaml_ng::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker-compose.yml"
    ))
    .expect("docker-compose.yml");
    let mut value: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml is YAML");
    value.apply_merge().expect("merge keys resolve");
    value
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("environment value {other:?} is not a scalar"),
    }
}

/// Stand-ins for the compose `secrets:` files a deployment makes: one file per secret, under a
/// directory of this test's own, removed when dropped.
struct SecretFiles {
    dir: PathBuf,
}

impl SecretFiles {
    fn new() -> SecretFiles {
        let dir = std::env::temp_dir().join(format!(
            "seedsync-compose-secrets-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("secrets directory");
        SecretFiles { dir }
    }

    /// The host file standing in for secret `name`: 48 bytes, as docs/deploy.md asks for,
    /// and a different value per secret.
    fn file(&self, name: &str) -> String {
        let path = self.dir.join(name);
        if !path.exists() {
            let value = format!("{name}-{}", "0123456789abcdef".repeat(3));
            std::fs::write(&path, format!("{value}\n")).expect("secret file");
        }
        path.to_str().expect("a UTF-8 temp path").to_owned()
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The secrets `service` mounts, by their path in its container: compose's short form `- name`
/// mounts at /run/secrets/name, the long form at `target` (relative to /run/secrets). Each must
/// be a top-level `secrets:` entry read from a `file:`.
fn mounted_secrets(compose: &Value, service: &str) -> HashMap<String, String> {
    let Some(list) = compose["services"][service]["secrets"].as_sequence() else {
        return HashMap::new();
    };
    list.iter()
        .map(|entry| {
            let (source, target) = match entry {
                Value::String(name) => (name.clone(), name.clone()),
                Value::Mapping(_) => {
                    let source = entry["source"].as_str().expect("secret source").to_owned();
                    let target = entry["target"].as_str().unwrap_or(&source).to_owned();
                    (source, target)
                }
                other => panic!("{service}: secret entry {other:?}"),
            };
            assert!(
                compose["secrets"][source.as_str()]["file"]
                    .as_str()
                    .is_some(),
                "{service}: secret {source} is not a top-level `secrets:` entry with a `file:`"
            );
            let path = if target.starts_with('/') {
                target
            } else {
                format!("/run/secrets/{target}")
            };
            (path, source)
        })
        .collect()
}

/// The origin environment of `service` as a deployment gets it, checked: every variable one
/// the origin reads, `${VAR...}` from the host stood in for, and every `*_FILE` a path where the
/// service mounts a compose secret (swapped for the host file `secrets` holds for it).
fn origin_environment(
    compose: &Value,
    service: &str,
    secrets: &SecretFiles,
) -> HashMap<String, String> {
    let mounted = mounted_secrets(compose, service);
    let env: HashMap<String, String> = compose["services"][service]["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{service}: environment mapping"))
        .iter()
        .map(|(k, v)| (k.as_str().expect("key").to_owned(), scalar(v)))
        // `${VAR...}` comes from the host at `docker compose up`: stand in a value such a
        // deployment would set (a blank `:-` default means unset, `:-value` is the value).
        .map(|(k, v)| match v.strip_prefix("${") {
            Some(rest) if rest.contains(":-}") => (k, String::new()),
            Some(rest) if rest.contains(":-") => {
                let default = &rest[rest.find(":-").unwrap() + 2..rest.rfind('}').unwrap()];
                (k, default.to_owned())
            }
            Some(_) => (
                k,
                "a-deployment-secret-of-48-random-bytes-0123456789".to_owned(),
            ),
            None => (k, v),
        })
        .collect();
    env.into_iter()
        .map(|(key, value)| {
            assert!(
                VARIABLES.contains(&key.as_str()),
                "{service}: {key} is not a variable the origin reads"
            );
            if !key.ends_with("_FILE") || value.is_empty() {
                return (key, value);
            }
            let secret = mounted.get(&value).unwrap_or_else(|| {
                panic!("{service}: {key}={value} is not where the service mounts a secret")
            });
            (key, secrets.file(secret))
        })
        .collect()
}

#[test]
fn compose_runs_cassandra_and_one_valid_origin_per_region() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    assert!(services.contains_key("cassandra"), "no cassandra service");
    let secrets = SecretFiles::new();
    let mut host_ports = Vec::new();
    for (region, expected_port) in [("eu", 8081), ("us", 8082), ("asia", 8083)] {
        let name = format!("origin-{region}");
        let service = &compose["services"][name.as_str()];
        assert!(service.is_mapping(), "no service {name}");
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("origin/Dockerfile"),
            "{name} must build the one origin image"
        );
        let env = origin_environment(&compose, &name, &secrets);
        for required in [
            "REGION",
            "CASSANDRA_HOSTS",
            "CASSANDRA_KEYSPACE",
            "PORT",
            "HOST",
        ] {
            assert!(env.contains_key(required), "{name}: {required} missing");
        }
        assert_eq!(env["REGION"], region);
        let settings = Settings::from_map(&env).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(settings.region.as_str(), region);
        assert_eq!(settings.cassandra.hosts, vec!["cassandra:9042".to_owned()]);
        let ports: Vec<String> = service["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .map(scalar)
            .collect();
        assert_eq!(
            ports,
            vec![format!("127.0.0.1:{expected_port}:{}", settings.port)],
            "{name} ports"
        );
        host_ports.push(expected_port);
        let depends = &service["depends_on"]["cassandra"]["condition"];
        assert_eq!(
            depends.as_str(),
            Some("service_healthy"),
            "{name} must wait for Cassandra"
        );
    }
    assert_eq!(host_ports, [8081, 8082, 8083]);
}

/// The one-off `migrate` job validates the same production settings as the origins before it
/// touches the schema, so its environment and secrets must make a valid origin too.
#[test]
fn compose_migrate_job_has_valid_origin_settings() {
    let compose = compose();
    let service = &compose["services"]["migrate"];
    assert!(service.is_mapping(), "no migrate service");
    assert_eq!(
        service["command"]
            .as_sequence()
            .map(|c| c.iter().map(scalar).collect::<Vec<_>>()),
        Some(vec!["migrate".to_owned()]),
        "migrate runs `origin migrate`"
    );
    let secrets = SecretFiles::new();
    let env = origin_environment(&compose, "migrate", &secrets);
    let settings = Settings::from_map(&env).unwrap_or_else(|e| panic!("migrate: {e}"));
    assert_eq!(settings.cassandra.hosts, vec!["cassandra:9042".to_owned()]);
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_non_root() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("origin/Dockerfile");
    assert!(
        text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    let user = text
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    assert_ne!(user.trim(), "USER 0");
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/origin\"]"));
}
