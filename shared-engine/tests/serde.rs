//! The `serde` feature: `Algorithm` is its wire name, `Tick` has the wire's field names.
//! Run with `cargo test -p shared-engine --features serde` (or `--all-features`).
#![cfg(feature = "serde")]

use serde_json::json;
use shared_engine::{Algorithm, Params, Tick, tick_at};

#[test]
fn algorithms_are_their_wire_names() {
    for algorithm in Algorithm::ALL {
        let value = serde_json::to_value(algorithm).unwrap();
        assert_eq!(value, json!(algorithm.as_str()));
        assert_eq!(
            serde_json::from_value::<Algorithm>(value).unwrap(),
            algorithm
        );
        // Borrowed and owned strings alike.
        let text = format!("\"{algorithm}\"");
        assert_eq!(serde_json::from_str::<Algorithm>(&text).unwrap(), algorithm);
    }
    assert_eq!(
        serde_json::from_str::<Algorithm>("\"interval-v0\"").unwrap(),
        Algorithm::IntervalV0
    );
}

#[test]
fn unknown_algorithms_are_rejected_with_the_valid_names() {
    for bad in [json!("mix32"), json!("Interval-V0"), json!("")] {
        let message = serde_json::from_value::<Algorithm>(bad.clone())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(r#""mix32-v1", "lcg32" or "interval-v0""#),
            "{bad}: {message}"
        );
        assert!(message.contains("unknown algorithm"), "{message}");
    }
    let message = serde_json::from_value::<Algorithm>(json!(3))
        .unwrap_err()
        .to_string();
    assert!(message.contains("an algorithm name"), "{message}");
}

#[test]
fn ticks_have_the_wire_field_names() {
    let params = Params::new(0, 0, 100, 50, Algorithm::IntervalV0).unwrap();
    let tick = tick_at(&params, 100);
    let value = serde_json::to_value(tick).unwrap();
    assert_eq!(
        value,
        json!({"step": 100, "value": 0, "round": 1, "broken": true})
    );
    assert_eq!(serde_json::from_value::<Tick>(value).unwrap(), tick);
    assert!(serde_json::from_value::<Tick>(json!({"step": 1, "value": 2})).is_err());
}
