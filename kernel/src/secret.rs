//! Credentials that cannot leak through formatting, and comparing them without a timing
//! side channel.

use std::fmt;

/// A credential (a key, a password, a URL with one in it). `Debug` and `Display` print
/// `[redacted]`; the value is reached only through [`Secret::expose`], which makes every use
/// easy to find.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: for the one place that needs it (a MAC key, a driver's password).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `given` equals the value, in time that depends only on the lengths.
    pub fn matches(&self, given: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), given.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Byte equality whose time depends only on the lengths, not on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// `url` without the password of its userinfo (`nats://user:pw@host` ->
/// `nats://user:***@host`), for logs and error messages: a URL setting may carry credentials.
/// A comma-separated list (NATS seeds) is redacted entry by entry.
///
/// ```
/// assert_eq!(kernel::redact_url("nats://app:hunter2@127.0.0.1:4222"), "nats://app:***@127.0.0.1:4222");
/// assert_eq!(kernel::redact_url("nats://token@host"), "nats://***@host");
/// assert_eq!(kernel::redact_url("http://127.0.0.1:8081/a@b"), "http://127.0.0.1:8081/a@b");
/// assert_eq!(kernel::redact_url("u:p@h1:4222,nats://h2:4222"), "***@h1:4222,nats://h2:4222");
/// ```
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let shown = match (scheme, userinfo.split_once(':')) {
        (Some(_), Some((user, _password))) => format!("{user}:***"),
        // A lone userinfo is usually a token; without a scheme, `user:` may be anything.
        _ => "***".to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{shown}@{host}{tail}"),
        None => format!("{shown}@{host}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(secret.clone())).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }

    #[test]
    fn compares_by_value() {
        let secret = Secret::from("abc");
        assert!(secret.matches("abc"));
        assert!(!secret.matches("abd"));
        assert!(!secret.matches("ab"));
        assert!(!secret.matches("abcd"));
        assert!(!secret.matches(""));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"sam"));
        assert!(!constant_time_eq(b"", b"\0"));
    }
}
