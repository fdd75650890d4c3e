//! Cost of owner tokens per request: `cargo bench -p owner-token` prints ns per sign (what a
//! start adds) and per verify (what an exit adds), plus the `Authorization` parsing.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use owner_token::{DEFAULT_TTL_MS, Keyring, bearer};

fn per_op(label: &str, iterations: u32, mut op: impl FnMut(u32)) -> f64 {
    // Warm up caches and the branch predictor before timing.
    for i in 0..iterations / 10 {
        op(i);
    }
    let started = Instant::now();
    for i in 0..iterations {
        op(i);
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("owner-token {label}: {ns:.0} ns/op ({iterations} ops)");
    ns
}

fn main() {
    let secret = b"bench-secret-bench-secret-bench-secret!!";
    let previous = b"previous-secret-previous-secret-previous";
    let keys = Keyring::new(secret, &[previous], DEFAULT_TTL_MS).expect("valid secrets");
    let game = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";
    let user = "player-0123456789abcdef0123456789abcdef";
    let created = 1_700_000_000_000i64;
    let token = keys.issue(game, user, created);
    let header = format!("Bearer {token}");
    let n = 200_000;
    per_op("sign", n, |i| {
        black_box(keys.issue(black_box(game), black_box(user), created + i64::from(i)));
    });
    per_op("verify", n, |_| {
        black_box(
            keys.verify_for_game(black_box(&token), game, created + 1)
                .is_ok(),
        );
    });
    per_op("bearer+verify", n, |_| {
        let t = bearer(Some(black_box(&header))).expect("well-formed");
        black_box(keys.verify_for_game(t, game, created + 1).is_ok());
    });
    println!("owner-token token length: {} bytes", token.len());
}
