//! Structured JSON logs and W3C trace context.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber (level from `RUST_LOG`, default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}

/// A W3C `traceparent`: the caller's trace id (or a new one), and this hop's span id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits, new for this hop.
    pub span_id: String,
    /// Trace flags, 2 hex digits.
    pub flags: String,
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(len: usize) -> String {
    let mut bytes = [0u8; 16];
    // Trace ids need uniqueness, not secrecy; fall back to a UUID's randomness if the OS fails.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = *uuid::Uuid::new_v4().as_bytes();
    }
    bytes
        .iter()
        .take(len / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TraceContext {
    /// Continues the caller's trace if `header` is a valid version-00 traceparent, else
    /// starts a new sampled trace.
    pub fn from_header(header: Option<&str>) -> TraceContext {
        if let Some(header) = header {
            let parts: Vec<&str> = header.trim().split('-').collect();
            if let [version, trace_id, parent, flags] = parts[..]
                && version == "00"
                && is_hex(trace_id, 32)
                && trace_id != "0".repeat(32)
                && is_hex(parent, 16)
                && is_hex(flags, 2)
            {
                return TraceContext {
                    trace_id: trace_id.to_owned(),
                    span_id: random_hex(16),
                    flags: flags.to_owned(),
                };
            }
        }
        TraceContext {
            trace_id: random_hex(32),
            span_id: random_hex(16),
            flags: "01".to_owned(),
        }
    }

    /// The `traceparent` header naming this hop as the parent.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::from_header(Some(incoming));
        assert_eq!(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(trace.span_id, "00f067aa0ba902b7");
        assert!(
            trace
                .header()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn starts_a_new_trace_for_invalid_headers() {
        for bad in [
            "",
            "garbage",
            "00-XYZ-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            let trace = TraceContext::from_header(Some(bad));
            assert!(
                is_hex(&trace.trace_id, 32) && is_hex(&trace.span_id, 16),
                "{bad}"
            );
            assert_ne!(trace.trace_id, "0".repeat(32));
        }
    }
}
