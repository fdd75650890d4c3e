//! docs/openapi.yaml describes what is served: every documented path answers every documented
//! method (not the 404/405 fallbacks), and answers 405 to every undocumented one.

mod common;

use common::spawn_app;
use serde_yaml_ng::Value;

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

#[tokio::test]
async fn every_documented_route_is_served_with_exactly_its_methods() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .expect("docs/openapi.yaml");
    let spec: Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let paths = spec["paths"].as_mapping().expect("paths");
    assert_eq!(paths.len(), 14, "the origin serves 14 paths");
    let app = spawn_app("eu").await;
    let game = uuid::Uuid::new_v4().to_string();
    for (path, operations) in paths {
        let path = path.as_str().unwrap();
        let concrete = path
            .replace("{id}", &game)
            .replace("{userId}", "openapi-user");
        for method in METHODS {
            let documented = operations.get(method).is_some();
            let request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .header("content-type", "application/json")
                .body("{}");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            if documented {
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                assert!(
                    !body.contains("no such route"),
                    "{method} {path} is documented but not routed"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {status} {body}"
                );
            }
        }
    }
    app.stop().await;
}
