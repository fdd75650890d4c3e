//! The edge's signature on each request it sends an origin.
//!
//! On Cloudflare the edge leaves from address space any Worker shares, so an origin cannot
//! tell the edge by its IP. Instead the edge signs every request with `EDGE_ORIGIN_SECRET`:
//!
//! ```text
//! x-seedsync-edge-signature: v1 t=<unix ms> n=<nonce> s=<base64url HMAC-SHA256>
//! ```
//!
//! over `seedsync-edge-origin-v1\n` followed by, each as `<length>:<bytes>\n`: the method
//! (upper case), the path with its query, the timestamp, the nonce, the client address the
//! edge vouches for, and the verified user id (`-` when there is none, `+<id>` when there is,
//! so "no user" and "the empty user" differ). The origin believes the client address (and the
//! user id) only from a request whose signature verifies ([`verify`]), whose timestamp is within
//! the window of its clock, and whose nonce it has not seen within that window
//! ([`ReplayGuard`]). The body is not covered: the signature authenticates who sends and on
//! whose behalf, and TLS protects the bytes in transit.

use std::collections::{BTreeSet, HashSet};

use crate::{Keys, Why, decode_tag, encode_tag, push_field};

/// The request header that carries the signature.
pub const HEADER: &str = "x-seedsync-edge-signature";

/// The request header that carries the client address the edge vouches for.
pub const CLIENT_ADDRESS_HEADER: &str = "x-seedsync-client-address";

/// The request header that carries the user id the edge verified: `-` when there is none,
/// `+<id>` when there is (the same encoding as in the signed bytes; see [`user_header`]).
pub const USER_HEADER: &str = "x-seedsync-user-id";

/// `EDGE_ORIGIN_SECRET` and its `_FILE` / previous-secret variants, in
/// [`Keys::from_settings`] order. The edge (a Worker, without files) reads the first and third.
pub const SECRET_VARIABLES: [&str; 4] = [
    "EDGE_ORIGIN_SECRET",
    "EDGE_ORIGIN_SECRET_FILE",
    "EDGE_ORIGIN_PREVIOUS_SECRET",
    "EDGE_ORIGIN_PREVIOUS_SECRET_FILE",
];

/// The [`USER_HEADER`] value for `user_id`.
pub fn user_header(user_id: Option<&str>) -> String {
    match user_id {
        None => "-".to_owned(),
        Some(user) => format!("+{user}"),
    }
}

/// The user id of a [`USER_HEADER`] value: `Ok(None)` for `-` or a missing header,
/// `Err(Malformed)` for anything that is neither `-` nor `+<id>`.
pub fn parse_user_header(value: Option<&str>) -> Result<Option<&str>, Why> {
    match value {
        None | Some("-") => Ok(None),
        Some(v) => v.strip_prefix('+').map(Some).ok_or(Why::Malformed),
    }
}

/// How far an edge timestamp may be from the origin's clock, either way, by default.
pub const DEFAULT_WINDOW_MS: i64 = 30_000;

/// The shortest nonce accepted (16 base64url characters: 96 bits).
pub const MIN_NONCE_LEN: usize = 16;

/// The longest nonce accepted; bounds the replay guard's memory per entry.
pub const MAX_NONCE_LEN: usize = 64;

const DOMAIN: &[u8] = b"seedsync-edge-origin-v1\n";
const VERSION: &str = "v1";

/// What the signature binds, besides the time and the nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// The HTTP method, e.g. `POST` (compared upper-cased).
    pub method: &'a str,
    /// The path and query exactly as sent, e.g. `/api/games?x=1`.
    pub path_and_query: &'a str,
    /// The client address the edge vouches for (its `CF-Connecting-IP`).
    pub client_address: &'a str,
    /// The user id the edge has verified, when it has one.
    pub user_id: Option<&'a str>,
}

impl SignedRequest<'_> {
    fn canonical(&self, timestamp_ms: i64, nonce: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.path_and_query.len());
        out.extend_from_slice(DOMAIN);
        push_field(&mut out, self.method.to_ascii_uppercase().as_bytes());
        push_field(&mut out, self.path_and_query.as_bytes());
        push_field(&mut out, timestamp_ms.to_string().as_bytes());
        push_field(&mut out, nonce.as_bytes());
        push_field(&mut out, self.client_address.as_bytes());
        match self.user_id {
            None => push_field(&mut out, b"-"),
            Some(user) => push_field(&mut out, format!("+{user}").as_bytes()),
        }
        out
    }
}

/// The time and nonce of a request whose signature verified; hand it to [`ReplayGuard::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The edge's timestamp, Unix ms.
    pub timestamp_ms: i64,
    /// The edge's nonce.
    pub nonce: String,
}

fn valid_nonce(nonce: &str) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The header value for `request` at `timestamp_ms` with `nonce` (random, base64url,
/// [`MIN_NONCE_LEN`]..=[`MAX_NONCE_LEN`] characters; the caller draws it). Returns
/// [`Why::Malformed`] for a nonce outside that alphabet or length.
pub fn sign(
    keys: &Keys,
    request: &SignedRequest<'_>,
    timestamp_ms: i64,
    nonce: &str,
) -> Result<String, Why> {
    if !valid_nonce(nonce) || timestamp_ms < 0 {
        return Err(Why::Malformed);
    }
    let tag = keys.tag(&request.canonical(timestamp_ms, nonce));
    Ok(format!(
        "{VERSION} t={timestamp_ms} n={nonce} s={}",
        encode_tag(&tag)
    ))
}

/// Checks `header` against `request`: the format, the MAC (current or previous key), then that
/// the timestamp is within `window_ms` of `now_ms` either way. Does not check the nonce for
/// replay; pass the result to [`ReplayGuard::admit`].
pub fn verify(
    keys: &Keys,
    request: &SignedRequest<'_>,
    header: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<Verified, Why> {
    let mut parts = header.split(' ');
    let (Some(VERSION), Some(t), Some(n), Some(s), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Why::Malformed);
    };
    let t = t.strip_prefix("t=").ok_or(Why::Malformed)?;
    let nonce = n.strip_prefix("n=").ok_or(Why::Malformed)?;
    let tag = decode_tag(s.strip_prefix("s=").ok_or(Why::Malformed)?)?;
    if t.is_empty() || t.len() > 15 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Why::Malformed);
    }
    let timestamp_ms: i64 = t.parse().map_err(|_| Why::Malformed)?;
    if !valid_nonce(nonce) {
        return Err(Why::Malformed);
    }
    if !keys.verifies(&request.canonical(timestamp_ms, nonce), &tag) {
        return Err(Why::BadSignature);
    }
    if timestamp_ms < now_ms.saturating_sub(window_ms) {
        return Err(Why::Stale);
    }
    if timestamp_ms > now_ms.saturating_add(window_ms) {
        return Err(Why::Future);
    }
    Ok(Verified {
        timestamp_ms,
        nonce: nonce.to_owned(),
    })
}

/// The nonces seen within the window, so a captured request cannot be replayed while its
/// timestamp is still fresh (after that, [`verify`] refuses it as stale).
///
/// A nonce is remembered until its timestamp plus the window has passed. Memory is bounded by
/// `capacity`: at most `capacity` nonces of at most [`MAX_NONCE_LEN`] bytes, each held twice
/// (by value and by expiry), so about `capacity × 300` bytes (≈ 20 MB at 65 536). When full of
/// nonces that are all still live, a new one is refused ([`Why::GuardFull`]) rather than an old
/// one forgotten: forgetting would let that one be replayed, refusing only delays honest
/// traffic until entries expire. Size it above the edge's request rate × 2 × window.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    window_ms: i64,
    capacity: usize,
    seen: HashSet<String>,
    by_expiry: BTreeSet<(i64, String)>,
}

impl ReplayGuard {
    /// A guard for signatures verified with `window_ms`, remembering at most `capacity` nonces.
    pub fn new(capacity: usize, window_ms: i64) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            capacity,
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets nonces whose timestamp is now outside the window ([`verify`] refuses those).
    fn prune(&mut self, now_ms: i64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 >= now_ms {
                break;
            }
            if let Some((_, nonce)) = self.by_expiry.pop_first() {
                self.seen.remove(&nonce);
            }
        }
    }

    /// Accepts `verified` once: [`Why::Replayed`] if its nonce was seen within the window,
    /// [`Why::Stale`]/[`Why::Future`] if its timestamp is outside the window of `now_ms`,
    /// [`Why::GuardFull`] if there is no room.
    pub fn admit(&mut self, verified: &Verified, now_ms: i64) -> Result<(), Why> {
        self.prune(now_ms);
        if verified.timestamp_ms < now_ms.saturating_sub(self.window_ms) {
            return Err(Why::Stale);
        }
        if verified.timestamp_ms > now_ms.saturating_add(self.window_ms) {
            return Err(Why::Future);
        }
        if self.seen.contains(&verified.nonce) {
            return Err(Why::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(Why::GuardFull);
        }
        let expiry = verified.timestamp_ms.saturating_add(self.window_ms);
        self.seen.insert(verified.nonce.clone());
        self.by_expiry.insert((expiry, verified.nonce.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Secret;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    const NOW: i64 = 1_700_000_000_000;
    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";

    /// Computed independently with Python's `hmac`/`hashlib`/`base64` (see
    /// `trust/vectors/golden.py`); any change to the format breaks this test.
    const GOLDEN: &str =
        "v1 t=1700000000000 n=AAECAwQFBgcICQoLDA0ODw s=0Wshuk2E1s2tL29CkvXaDRzkeGy3t135YJbRWdwoNt0";

    fn keys(current: &str, previous: Option<&str>) -> Keys {
        Keys::new("T", Secret::new(current), previous.map(Secret::new)).unwrap()
    }

    fn request() -> SignedRequest<'static> {
        SignedRequest {
            method: "POST",
            path_and_query: "/api/games?region=eu",
            client_address: "203.0.113.7",
            user_id: None,
        }
    }

    #[test]
    fn golden_vector() {
        assert_eq!(
            request().canonical(NOW, NONCE),
            b"seedsync-edge-origin-v1\n4:POST\n20:/api/games?region=eu\n13:1700000000000\n22:AAECAwQFBgcICQoLDA0ODw\n11:203.0.113.7\n1:-\n"
        );
        let header = sign(&keys(SECRET, None), &request(), NOW, NONCE).unwrap();
        assert_eq!(header, GOLDEN);
        let verified = verify(
            &keys(SECRET, None),
            &request(),
            GOLDEN,
            NOW,
            DEFAULT_WINDOW_MS,
        );
        assert_eq!(
            verified,
            Ok(Verified {
                timestamp_ms: NOW,
                nonce: NONCE.into()
            })
        );
    }

    #[test]
    fn every_field_is_covered() {
        let k = keys(SECRET, None);
        let header = sign(&k, &request(), NOW, NONCE).unwrap();
        let forged = [
            SignedRequest {
                method: "GET",
                ..request()
            },
            SignedRequest {
                path_and_query: "/api/games?region=us",
                ..request()
            },
            SignedRequest {
                path_and_query: "/api/games",
                ..request()
            },
            SignedRequest {
                client_address: "198.51.100.1",
                ..request()
            },
            SignedRequest {
                user_id: Some(""),
                ..request()
            },
            SignedRequest {
                user_id: Some("alice"),
                ..request()
            },
        ];
        for request in forged {
            assert_eq!(
                verify(&k, &request, &header, NOW, DEFAULT_WINDOW_MS),
                Err(Why::BadSignature),
                "{request:?}"
            );
        }
        // The method is compared upper-cased.
        let lower = SignedRequest {
            method: "post",
            ..request()
        };
        assert!(verify(&k, &lower, &header, NOW, DEFAULT_WINDOW_MS).is_ok());
        // A different timestamp or nonce in the header breaks the MAC.
        let moved = header.replace("t=1700000000000", "t=1700000000001");
        assert_eq!(
            verify(&k, &request(), &moved, NOW, DEFAULT_WINDOW_MS),
            Err(Why::BadSignature)
        );
        let renonced = header.replace(NONCE, "BAECAwQFBgcICQoLDA0ODw");
        assert_eq!(
            verify(&k, &request(), &renonced, NOW, DEFAULT_WINDOW_MS),
            Err(Why::BadSignature)
        );
        // A user id is bound when present.
        let with_user = SignedRequest {
            user_id: Some("alice"),
            ..request()
        };
        let header = sign(&k, &with_user, NOW, NONCE).unwrap();
        assert!(verify(&k, &with_user, &header, NOW, DEFAULT_WINDOW_MS).is_ok());
        let bob = SignedRequest {
            user_id: Some("bob"),
            ..request()
        };
        assert_eq!(
            verify(&k, &bob, &header, NOW, DEFAULT_WINDOW_MS),
            Err(Why::BadSignature)
        );
    }

    #[test]
    fn window() {
        let k = keys(SECRET, None);
        let header = sign(&k, &request(), NOW, NONCE).unwrap();
        let at = |now| verify(&k, &request(), &header, now, 30_000).map(|_| ());
        assert_eq!(at(NOW + 30_000), Ok(()));
        assert_eq!(at(NOW - 30_000), Ok(()));
        assert_eq!(at(NOW + 30_001), Err(Why::Stale));
        assert_eq!(at(NOW - 30_001), Err(Why::Future));
    }

    #[test]
    fn rotation() {
        let by_old = sign(&keys(OTHER, None), &request(), NOW, NONCE).unwrap();
        let rotated = keys(SECRET, Some(OTHER));
        assert!(verify(&rotated, &request(), &by_old, NOW, DEFAULT_WINDOW_MS).is_ok());
        assert_eq!(
            verify(
                &keys(SECRET, None),
                &request(),
                &by_old,
                NOW,
                DEFAULT_WINDOW_MS
            ),
            Err(Why::BadSignature)
        );
        assert_eq!(
            sign(&rotated, &request(), NOW, NONCE),
            sign(&keys(SECRET, None), &request(), NOW, NONCE)
        );
    }

    #[test]
    fn malformed() {
        let k = keys(SECRET, None);
        let good = sign(&k, &request(), NOW, NONCE).unwrap();
        for bad in [
            String::new(),
            good.replace("v1 ", "v2 "),
            good.replace(' ', "  "),
            format!("{good} x=1"),
            good.replace("t=", "T="),
            good.replace("t=1700000000000", "t=-1"),
            good.replace("t=1700000000000", "t=+1700000000000"),
            good.replace("t=1700000000000", "t=99999999999999999999"),
            good.replace(NONCE, "short"),
            good.replace(NONCE, &"a".repeat(65)),
            good.replace(NONCE, "AAECAwQFBgcICQoLDA0OD="),
            good[..good.len() - 1].to_owned(),
        ] {
            assert_eq!(
                verify(&k, &request(), &bad, NOW, DEFAULT_WINDOW_MS),
                Err(Why::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(sign(&k, &request(), NOW, "short"), Err(Why::Malformed));
        assert_eq!(
            sign(&k, &request(), NOW, "has space in it!!"),
            Err(Why::Malformed)
        );
    }

    fn seen(nonce: &str, timestamp_ms: i64) -> Verified {
        Verified {
            timestamp_ms,
            nonce: nonce.into(),
        }
    }

    #[test]
    fn replay_guard_refuses_a_nonce_twice_within_the_window() {
        let mut guard = ReplayGuard::new(10, 30_000);
        assert_eq!(guard.admit(&seen(NONCE, NOW), NOW), Ok(()));
        assert_eq!(guard.admit(&seen(NONCE, NOW), NOW + 1), Err(Why::Replayed));
        // Even with a different timestamp (it would not verify, but the guard does not rely on it).
        assert_eq!(
            guard.admit(&seen(NONCE, NOW + 5), NOW + 10),
            Err(Why::Replayed)
        );
        assert_eq!(
            guard.admit(&seen(NONCE, NOW), NOW + 30_000),
            Err(Why::Replayed)
        );
        // Past the window the timestamp itself is refused, and the nonce is forgotten.
        assert_eq!(
            guard.admit(&seen(NONCE, NOW), NOW + 30_001),
            Err(Why::Stale)
        );
        assert!(guard.is_empty());
        assert_eq!(
            guard.admit(&seen("x".repeat(16).as_str(), NOW), NOW - 30_001),
            Err(Why::Future)
        );
    }

    #[test]
    fn replay_guard_fails_closed_when_full() {
        let mut guard = ReplayGuard::new(3, 30_000);
        for i in 0..3 {
            assert_eq!(
                guard.admit(&seen(&format!("nonce-{i:011}"), NOW), NOW),
                Ok(())
            );
        }
        assert_eq!(guard.len(), 3);
        assert_eq!(
            guard.admit(&seen("nonce-fresh-00000", NOW), NOW),
            Err(Why::GuardFull)
        );
        // Nothing was forgotten to make room: the old nonces are still refused.
        assert_eq!(
            guard.admit(&seen("nonce-00000000000", NOW), NOW),
            Err(Why::Replayed)
        );
        // Once the old ones have expired there is room again.
        assert_eq!(
            guard.admit(&seen("nonce-fresh-00000", NOW + 30_000), NOW + 30_001),
            Ok(())
        );
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn user_header_round_trips() {
        assert_eq!(user_header(None), "-");
        assert_eq!(user_header(Some("alice")), "+alice");
        assert_eq!(user_header(Some("")), "+");
        assert_eq!(parse_user_header(None), Ok(None));
        assert_eq!(parse_user_header(Some("-")), Ok(None));
        assert_eq!(parse_user_header(Some("+alice")), Ok(Some("alice")));
        assert_eq!(parse_user_header(Some("+")), Ok(Some("")));
        assert_eq!(parse_user_header(Some("alice")), Err(Why::Malformed));
    }

    #[test]
    fn replay_guard_end_to_end() {
        let k = keys(SECRET, None);
        let mut guard = ReplayGuard::new(100, DEFAULT_WINDOW_MS);
        let header = sign(&k, &request(), NOW, NONCE).unwrap();
        let verified = verify(&k, &request(), &header, NOW + 100, DEFAULT_WINDOW_MS).unwrap();
        assert_eq!(guard.admit(&verified, NOW + 100), Ok(()));
        let again = verify(&k, &request(), &header, NOW + 200, DEFAULT_WINDOW_MS).unwrap();
        assert_eq!(guard.admit(&again, NOW + 200), Err(Why::Replayed));
    }
}
