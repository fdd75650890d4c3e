//! `REGION_URL_PATTERN`: which origin URLs the edge may talk to.
//!
//! A registry row names a URL; the edge sends it players' requests and owner tokens, so even a
//! correctly signed row is used only if its URL also matches this allow-list (a leaked
//! `REGISTRY_SECRET` then still cannot point a region outside the deployment's domain).
//!
//! Grammar, deliberately small so there is nothing to be clever with:
//!
//! ```text
//! patterns = pattern *( "," pattern )
//! pattern  = scheme "://" host [ ":" ( port / "*" ) ] [ "/" ]
//! scheme   = "http" / "https"
//! host     = label *( "." label )      ; label = "*" or letters, digits, '-'
//! ```
//!
//! `*` as a label matches exactly one DNS label (never a dot, never nothing); `*` as the port
//! matches any port (for local development: `http://127.0.0.1:*`). Without a port the
//! scheme's default (80, 443) is required. Scheme and host compare case-insensitively. A URL
//! matches only if it is exactly `scheme://host[:port]` with an optional trailing `/`: no
//! userinfo (`https://a.origins.example.com@evil`), no path, query or fragment, no trailing dot,
//! no IPv6 literal, no percent-encoding.

use std::fmt;

use kernel::SettingsError;

/// The setting this pattern comes from.
pub const VARIABLE: &str = "REGION_URL_PATTERN";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Port {
    Default,
    Any,
    Exact(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct One {
    scheme: &'static str,
    labels: Vec<Label>,
    port: Port,
}

/// A list of URL patterns; a URL is allowed if it matches any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    alternatives: Vec<One>,
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, one) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}://", one.scheme)?;
            for (j, label) in one.labels.iter().enumerate() {
                if j > 0 {
                    f.write_str(".")?;
                }
                match label {
                    Label::Any => f.write_str("*")?,
                    Label::Exact(text) => f.write_str(text)?,
                }
            }
            match one.port {
                Port::Default => {}
                Port::Any => f.write_str(":*")?,
                Port::Exact(port) => write!(f, ":{port}")?,
            }
        }
        Ok(())
    }
}

/// A URL split into what a pattern compares.
struct Parts {
    scheme: &'static str,
    host: String,
    port: Option<String>,
}

/// Splits `scheme://authority[/]`, refusing anything else. Lowercases scheme and host.
fn split(text: &str) -> Option<Parts> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    // Anything that could start a path, query, fragment or userinfo, or an IPv6 literal or
    // percent-encoding, is refused rather than interpreted.
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'[' | b']' | b'%' | b'\\'))
    {
        return None;
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port.to_owned())),
        None => (authority, None),
    };
    Some(Parts {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl One {
    fn parse(text: &str) -> Result<One, String> {
        let parts = split(text).ok_or_else(|| {
            format!(
                "{text:?} is not of the form http(s)://host[:port] (no path, userinfo or query)"
            )
        })?;
        let mut labels = Vec::new();
        for label in parts.host.split('.') {
            if label == "*" {
                labels.push(Label::Any);
            } else if valid_label(label) {
                labels.push(Label::Exact(label.to_owned()));
            } else {
                return Err(format!(
                    "{text:?}: host label {label:?} must be `*` or letters, digits and '-' (no empty label, no trailing dot)"
                ));
            }
        }
        if labels.iter().all(|l| *l == Label::Any) {
            return Err(format!("{text:?}: the host needs at least one fixed label"));
        }
        let port = match parts.port.as_deref() {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(port) => {
                Port::Exact(parse_port(port).ok_or_else(|| format!("{text:?}: bad port {port:?}"))?)
            }
        };
        Ok(One {
            scheme: parts.scheme,
            labels,
            port,
        })
    }

    fn matches(&self, url: &Parts, port: u16) -> bool {
        let labels: Vec<&str> = url.host.split('.').collect();
        self.scheme == url.scheme
            && labels.len() == self.labels.len()
            && labels
                .iter()
                .zip(&self.labels)
                .all(|(got, want)| match want {
                    Label::Any => true,
                    Label::Exact(text) => got == text,
                })
            && match self.port {
                Port::Default => port == default_port(self.scheme),
                Port::Any => true,
                Port::Exact(want) => port == want,
            }
    }
}

impl UrlPattern {
    /// Parses a comma-separated list of patterns (surrounding whitespace ignored). An empty
    /// list or any bad entry is an error naming [`VARIABLE`].
    pub fn parse(text: &str) -> Result<UrlPattern, SettingsError> {
        let mut alternatives = Vec::new();
        for entry in text.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(SettingsError::new(VARIABLE, "has an empty entry"));
            }
            alternatives.push(One::parse(entry).map_err(|m| SettingsError::new(VARIABLE, m))?);
        }
        Ok(UrlPattern { alternatives })
    }

    /// Whether `url` is exactly `scheme://host[:port][/]` and matches one of the patterns.
    pub fn matches(&self, url: &str) -> bool {
        let Some(parts) = split(url) else {
            return false;
        };
        if !parts.host.split('.').all(valid_label) {
            return false;
        }
        let port = match parts.port.as_deref() {
            None => default_port(parts.scheme),
            Some(text) => match parse_port(text) {
                Some(port) => port,
                None => return false,
            },
        };
        self.alternatives
            .iter()
            .any(|one| one.matches(&parts, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> UrlPattern {
        UrlPattern::parse(text).unwrap()
    }

    #[test]
    fn wildcard_is_one_label() {
        let pattern = p("https://*.origins.example.com");
        assert!(pattern.matches("https://eu.origins.example.com"));
        assert!(pattern.matches("https://eu.origins.example.com/"));
        assert!(pattern.matches("https://eu-2.origins.example.com:443"));
        assert!(pattern.matches("HTTPS://EU.Origins.Example.COM"));
        assert!(!pattern.matches("https://origins.example.com"));
        assert!(!pattern.matches("https://a.b.origins.example.com"));
        assert!(!pattern.matches("https://.origins.example.com"));
        assert!(!pattern.matches("http://eu.origins.example.com"));
        assert!(!pattern.matches("https://eu.origins.example.com:8443"));
    }

    #[test]
    fn tricky_urls_are_refused() {
        let pattern = p("https://*.origins.example.com");
        for url in [
            "https://a.origins.example.com@evil",
            "https://a.origins.example.com@evil.com",
            "https://user:pw@a.origins.example.com",
            "https://evil-origins.example.com",
            "https://a.evil-origins.example.com",
            "https://a.origins.example.com.evil.com",
            "https://a.origins.example.com.",
            "https://a.origins.example.com/path",
            "https://a.origins.example.com/?x=1",
            "https://a.origins.example.com#frag",
            "https://a.origins.example.com?x",
            "https://a.origins.example.com\\@evil",
            "https://a%2eorigins.example.com",
            "https://a_b.origins.example.com",
            "https://-a.origins.example.com",
            "https://*.origins.example.com",
            "https://a.origins.example.com:",
            "https://a.origins.example.com:0",
            "https://a.origins.example.com:443:443",
            "https://a.origins.example.com:99999",
            "https://[::1]",
            "//a.origins.example.com",
            "a.origins.example.com",
            "ftp://a.origins.example.com",
            "",
        ] {
            assert!(!pattern.matches(url), "{url:?} must not match");
        }
    }

    #[test]
    fn ports() {
        let local = p("http://127.0.0.1:*");
        assert!(local.matches("http://127.0.0.1:8081"));
        assert!(local.matches("http://127.0.0.1"));
        assert!(!local.matches("http://127.0.0.2:8081"));
        assert!(!local.matches("https://127.0.0.1:8081"));
        let fixed = p("http://localhost:8081");
        assert!(fixed.matches("http://localhost:8081/"));
        assert!(!fixed.matches("http://localhost:8082"));
        assert!(!fixed.matches("http://localhost"));
        assert!(p("http://localhost").matches("http://localhost:80"));
    }

    #[test]
    fn lists() {
        let pattern = p(" https://*.origins.example.com , http://127.0.0.1:* ");
        assert!(pattern.matches("https://us.origins.example.com"));
        assert!(pattern.matches("http://127.0.0.1:9000"));
        assert!(!pattern.matches("http://attacker"));
        assert_eq!(
            pattern.to_string(),
            "https://*.origins.example.com,http://127.0.0.1:*"
        );
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "https://*.origins.example.com,",
            "https://*",
            "https://*.*",
            "https://a.*b.example.com",
            "https://*.origins.example.com/path",
            "https://u@*.origins.example.com",
            "https://origins.example.com.",
            "https://origins..example.com",
            "gopher://x.example.com",
            "https://x.example.com:http",
            "https://x.example.com:70000",
        ] {
            let error = UrlPattern::parse(bad).unwrap_err();
            assert_eq!(error.variable, VARIABLE, "{bad:?}");
        }
    }
}
