//! Region-registry records signed by an origin.
//!
//! An origin that heartbeats (or is asked to register) signs `(name, url, version, expiry)` with
//! `REGISTRY_SECRET` and stores the signature with the row; everyone who reads the registry
//! (the other origins, the edge) uses a row only if the signature verifies and the record has
//! not expired. A row written by anyone without the secret (an anonymous `register`, a row
//! inserted straight into Cassandra, a tampered `/api/regions` answer) is ignored, and a
//! captured signature stops working at the record's expiry.
//!
//! Signature: `r1.<base64url HMAC-SHA256>` over
//! `seedsync-registry-v1\n` followed by the four fields, each as `<length>:<bytes>\n`
//! (name, url, version, expiry in decimal Unix ms).

use crate::{Keys, Why, decode_tag, encode_tag, push_field};

/// `REGISTRY_SECRET` and its `_FILE` / previous-secret variants, in
/// [`Keys::from_settings`] order: the origins sign with it, the edge verifies with it.
pub const SECRET_VARIABLES: [&str; 4] = [
    "REGISTRY_SECRET",
    "REGISTRY_SECRET_FILE",
    "REGISTRY_PREVIOUS_SECRET",
    "REGISTRY_PREVIOUS_SECRET_FILE",
];

const DOMAIN: &[u8] = b"seedsync-registry-v1\n";
const PREFIX: &str = "r1.";

/// One region as the registry advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRecord {
    /// The region's name, e.g. `eu`.
    pub name: String,
    /// The origin's base URL, e.g. `https://eu.origins.example.com`.
    pub url: String,
    /// The origin's build version as it reports it.
    pub version: String,
    /// Unix ms after which the record is not believed (a heartbeat renews it).
    pub expires_at_ms: i64,
}

impl RegistryRecord {
    /// The exact bytes the signature covers.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.name.len() + self.url.len());
        out.extend_from_slice(DOMAIN);
        push_field(&mut out, self.name.as_bytes());
        push_field(&mut out, self.url.as_bytes());
        push_field(&mut out, self.version.as_bytes());
        push_field(&mut out, self.expires_at_ms.to_string().as_bytes());
        out
    }
}

/// The signature of `record` under the current key.
pub fn sign(keys: &Keys, record: &RegistryRecord) -> String {
    let mut out = String::from(PREFIX);
    out.push_str(&encode_tag(&keys.tag(&record.canonical())));
    out
}

/// Whether `signature` is a valid signature of `record` (under the current or the previous
/// key) and the record is still live at `now_ms`. The signature is checked first, so an
/// unauthenticated record never reaches any other logic.
pub fn verify(
    keys: &Keys,
    record: &RegistryRecord,
    signature: &str,
    now_ms: i64,
) -> Result<(), Why> {
    let tag = decode_tag(signature.strip_prefix(PREFIX).ok_or(Why::Malformed)?)?;
    if !keys.verifies(&record.canonical(), &tag) {
        return Err(Why::BadSignature);
    }
    if now_ms >= record.expires_at_ms {
        return Err(Why::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Secret;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    const NOW: i64 = 1_700_000_000_000;

    /// Computed independently with Python's `hmac`/`hashlib`/`base64` (see
    /// `trust/vectors/golden.py`); any change to the format breaks this test.
    const GOLDEN: &str = "r1.uU7d2kLjpMbsMa9VAPweJrv3fecv1AAETsGgn-hmSLg";

    fn keys(current: &str, previous: Option<&str>) -> Keys {
        Keys::new("T", Secret::new(current), previous.map(Secret::new)).unwrap()
    }

    fn record() -> RegistryRecord {
        RegistryRecord {
            name: "eu".into(),
            url: "https://eu.origins.example.com".into(),
            version: "0.1.0".into(),
            expires_at_ms: NOW + 60_000,
        }
    }

    #[test]
    fn golden_vector() {
        assert_eq!(
            record().canonical(),
            b"seedsync-registry-v1\n2:eu\n30:https://eu.origins.example.com\n5:0.1.0\n13:1700000060000\n"
        );
        let signature = sign(&keys(SECRET, None), &record());
        assert_eq!(signature, GOLDEN);
        assert_eq!(verify(&keys(SECRET, None), &record(), GOLDEN, NOW), Ok(()));
    }

    #[test]
    fn every_field_is_covered() {
        let k = keys(SECRET, None);
        let signature = sign(&k, &record());
        let changes: [fn(&mut RegistryRecord); 4] = [
            |r| r.name = "zz".into(),
            |r| r.url = "http://attacker".into(),
            |r| r.version = "0.1.1".into(),
            |r| r.expires_at_ms += 1,
        ];
        for change in changes {
            let mut forged = record();
            change(&mut forged);
            assert_eq!(verify(&k, &forged, &signature, NOW), Err(Why::BadSignature));
        }
    }

    #[test]
    fn expired_records_are_refused() {
        let k = keys(SECRET, None);
        let signature = sign(&k, &record());
        assert_eq!(verify(&k, &record(), &signature, NOW + 59_999), Ok(()));
        assert_eq!(
            verify(&k, &record(), &signature, NOW + 60_000),
            Err(Why::Expired)
        );
    }

    #[test]
    fn rotation_accepts_the_previous_key() {
        let old = keys(OTHER, None);
        let rotated = keys(SECRET, Some(OTHER));
        let by_old = sign(&old, &record());
        assert_eq!(verify(&rotated, &record(), &by_old, NOW), Ok(()));
        // Signing always uses the current key.
        assert_eq!(
            sign(&rotated, &record()),
            sign(&keys(SECRET, None), &record())
        );
        // After the rotation ends, the old key's signatures stop verifying.
        assert_eq!(
            verify(&keys(SECRET, None), &record(), &by_old, NOW),
            Err(Why::BadSignature)
        );
    }

    #[test]
    fn malformed_signatures() {
        let k = keys(SECRET, None);
        let good = sign(&k, &record());
        for bad in [
            "",
            "r1.",
            "r2.",
            &good[3..],
            &format!("{good}A"),
            &good.replace("r1.", "R1."),
        ] {
            assert_eq!(
                verify(&k, &record(), bad, NOW),
                Err(Why::Malformed),
                "{bad:?}"
            );
        }
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(verify(&k, &record(), &flipped, NOW), Err(Why::BadSignature));
    }
}
