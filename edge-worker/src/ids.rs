//! Identifiers the edge mints or checks: request ids, idempotency keys and W3C `traceparent`.
//! Request ids and keys are v4 UUIDs (the `uuid` crate; on wasm32 it draws from
//! `crypto.getRandomValues`); a client's own id is kept when it passes the contract's
//! [`IdempotencyKey`] rule. Trace ids take their random bytes as arguments, so the formatting
//! stays pure.

use api::IdempotencyKey;

/// A fresh random id (a v4 UUID, hyphenated lowercase): `x-request-id` and minted
/// `Idempotency-Key`s.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// The client's `x-request-id` when acceptable (the `Idempotency-Key` rule: 1..=128 visible
/// ASCII characters, safe to forward and to log), else a fresh one.
pub fn request_id(client: Option<&str>) -> String {
    client
        .filter(|v| IdempotencyKey::parse(v).is_ok())
        .map_or_else(new_id, str::to_owned)
}

/// A fresh `traceparent` (version 00, sampled) from random trace and span ids. All-zero ids are
/// invalid per the spec, so a zero id is nudged to 1.
pub fn new_traceparent(mut trace_id: [u8; 16], mut span_id: [u8; 8]) -> String {
    if trace_id.iter().all(|b| *b == 0) {
        trace_id[15] = 1;
    }
    if span_id.iter().all(|b| *b == 0) {
        span_id[7] = 1;
    }
    format!("00-{}-{}-01", hex(&trace_id), hex(&span_id))
}

/// Whether `v` is a well-formed version-00 `traceparent` (lowercase hex, non-zero ids).
pub fn is_valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let [version, trace, span, flags] = parts.as_slice() else {
        return false;
    };
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    *version == "00"
        && lower_hex(trace, 32)
        && lower_hex(span, 16)
        && lower_hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0')
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_v4_uuids_and_unique() {
        let a = new_id();
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(a, parsed.hyphenated().to_string());
        assert_ne!(a, new_id());
    }

    #[test]
    fn client_request_ids_are_kept_when_valid() {
        assert_eq!(request_id(Some("abc-123_XYZ:1")), "abc-123_XYZ:1");
        let long = "k".repeat(128);
        assert_eq!(request_id(Some(&long)), long);
        for bad in ["", "has space", "new\nline", "ünï", &"k".repeat(129)] {
            let minted = request_id(Some(bad));
            assert_ne!(minted, bad);
            assert!(uuid::Uuid::parse_str(&minted).is_ok(), "{bad:?}");
        }
        assert_eq!(request_id(None).len(), 36);
    }

    #[test]
    fn traceparent_round_trip() {
        let t = new_traceparent([0xab; 16], [0x01; 8]);
        assert_eq!(t, format!("00-{}-{}-01", "ab".repeat(16), "01".repeat(8)));
        assert!(is_valid_traceparent(&t));
        let z = new_traceparent([0; 16], [0; 8]);
        assert!(is_valid_traceparent(&z), "{z}");
    }

    #[test]
    fn traceparent_validation() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(ok));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad}");
        }
    }
}
