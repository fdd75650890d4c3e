//! No Docker engine runs here, so the deployment files are checked statically: every origin
//! service in docker-compose.yml must configure a valid origin for its region.

use std::collections::HashMap;

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

#[test]
fn compose_runs_cassandra_and_one_valid_origin_per_region() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    assert!(services.contains_key("cassandra"), "no cassandra service");
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
        let env: HashMap<String, String> = service["environment"]
            .as_mapping()
            .expect("environment mapping")
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
        for key in env.keys() {
            assert!(
                VARIABLES.contains(&key.as_str()),
                "{name}: {key} is not a variable the origin reads"
            );
        }
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
