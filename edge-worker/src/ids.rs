//! Identifiers the edge mints or checks: idempotency keys, `x-request-id` and W3C `traceparent`.
//! Randomness is passed in as bytes, so the formatting is pure (the Worker draws them from
//! `crypto.getRandomValues`).

/// Longest accepted client `Idempotency-Key` / `x-request-id`.
pub const MAX_ID_LEN: usize = 128;

/// An RFC 4122 version-4 UUID from 16 random bytes.
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
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

/// Whether a client-supplied id (idempotency key, request id) is acceptable: 1..=128 visible
/// ASCII characters, so it is safe to forward in a header and to log.
pub fn is_valid_client_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic())
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
    fn uuid_has_version_and_variant_bits() {
        let u = uuid_v4([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let u = uuid_v4([0; 16]);
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
        assert_eq!(u.len(), 36);
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

    #[test]
    fn client_ids() {
        assert!(is_valid_client_id("abc-123_XYZ:1"));
        assert!(is_valid_client_id(&"k".repeat(MAX_ID_LEN)));
        assert!(!is_valid_client_id(&"k".repeat(MAX_ID_LEN + 1)));
        assert!(!is_valid_client_id(""));
        assert!(!is_valid_client_id("has space"));
        assert!(!is_valid_client_id("new\nline"));
        assert!(!is_valid_client_id("ünï"));
    }
}
