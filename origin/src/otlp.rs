//! Span export over OTLP/HTTP (protobuf): the settings (`OTEL_*`, off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the tracer provider built from them.
//!
//! The settings are the standard OpenTelemetry variables, but read from the same map as every
//! other setting and validated the same way (a bad value names its variable), instead of the
//! SDK's own environment lookups, which fall back silently. The provider exports in batches
//! from the SDK's own thread (a blocking HTTP client), so a slow or absent collector never
//! holds a request: spans beyond the queue are dropped.

use std::time::Duration;

use kernel::SettingsError;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};

use crate::env::Env;

/// The `service.name` of the origin's spans unless `OTEL_SERVICE_NAME` says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "seedsync-origin";

/// How long one export may take before the batch is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a span may wait for its batch (the SDK's default is 5 s; a trace that shows up in
/// about a second is worth the few more export requests).
const EXPORT_DELAY: Duration = Duration::from_secs(1);

/// Which traces are kept (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: this fraction of traces.
    Ratio(f64),
    /// `parentbased_always_on` (the default): the caller's decision, else keep.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: the caller's decision, else drop.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: the caller's decision, else this fraction.
    ParentBasedRatio(f64),
}

impl SamplerChoice {
    fn sampler(self) -> Sampler {
        match self {
            SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
            SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
            SamplerChoice::Ratio(r) => Sampler::TraceIdRatioBased(r),
            SamplerChoice::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerChoice::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            SamplerChoice::ParentBasedRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// Span export, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP base URL; spans go to `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// `service.name`.
    pub service_name: String,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource: Vec<(String, String)>,
    /// Which traces are kept.
    pub sampler: SamplerChoice,
}

/// Whether `value` is an `http://` or `https://` URL with a host and no query or fragment.
fn valid_endpoint(value: &str) -> bool {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty()
            && !rest.contains(['?', '#', ' '])
            && !host.contains('@')
            && value.len() <= 2048
    })
}

/// `key=value,key=value` (W3C baggage-like, no percent-decoding needed for our keys).
fn parse_resource(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let (key, value) = (key.trim(), value.trim());
            let key_ok = !key.is_empty()
                && key.len() <= 255
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            (key_ok && value.len() <= 255 && !value.is_empty())
                .then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn parse_ratio(env: &Env<'_>) -> Result<f64, SettingsError> {
    env.parse(
        "OTEL_TRACES_SAMPLER_ARG",
        1.0f64,
        |r| (0.0..=1.0).contains(r),
        "a fraction from 0 to 1",
    )
}

impl TraceSettings {
    /// The export settings, or `None` (no export) when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.
    pub fn from_env(env: &Env<'_>) -> Result<Option<TraceSettings>, SettingsError> {
        let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") else {
            return Ok(None);
        };
        let endpoint = endpoint.trim();
        if !valid_endpoint(endpoint) {
            // The value is not echoed: a URL may carry credentials.
            return Err(SettingsError::new(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "is not an http:// or https:// URL without user info, query or fragment",
            ));
        }
        let service_name = env
            .get("OTEL_SERVICE_NAME")
            .map_or(DEFAULT_SERVICE_NAME, str::trim);
        if service_name.len() > 255 || service_name.chars().any(char::is_control) {
            return Err(SettingsError::new(
                "OTEL_SERVICE_NAME",
                "must be at most 255 printable characters",
            ));
        }
        let resource = match env.get("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(raw) => parse_resource(raw).ok_or_else(|| {
                SettingsError::new(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "is not key=value,key=value (keys of letters, digits, . _ -)",
                )
            })?,
        };
        let sampler = match env.get("OTEL_TRACES_SAMPLER").map(str::trim) {
            None | Some("parentbased_always_on") => SamplerChoice::ParentBasedAlwaysOn,
            Some("always_on") => SamplerChoice::AlwaysOn,
            Some("always_off") => SamplerChoice::AlwaysOff,
            Some("parentbased_always_off") => SamplerChoice::ParentBasedAlwaysOff,
            Some("traceidratio") => SamplerChoice::Ratio(parse_ratio(env)?),
            Some("parentbased_traceidratio") => SamplerChoice::ParentBasedRatio(parse_ratio(env)?),
            Some(other) => {
                return Err(SettingsError::new(
                    "OTEL_TRACES_SAMPLER",
                    format!(
                        "{other:?} is not always_on, always_off, traceidratio, \
                         parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                    ),
                ));
            }
        };
        Ok(Some(TraceSettings {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            service_name: service_name.to_owned(),
            resource,
            sampler,
        }))
    }

    /// Where the spans are posted.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }

    /// A tracer provider exporting in batches to the collector; `region` becomes the
    /// `seedsync.region` resource attribute. Must be shut down ([`SdkTracerProvider::shutdown`])
    /// to flush the last batch.
    pub fn provider(&self, region: &str) -> Result<SdkTracerProvider, String> {
        // An https collector needs rustls' process-wide provider (the HTTP client has none).
        crate::tls::install_default_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(self.traces_url())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("OTLP span exporter: {e}"))?;
        let mut attributes: Vec<KeyValue> = self
            .resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        attributes.push(KeyValue::new("seedsync.region", region.to_owned()));
        let resource = Resource::builder_empty()
            .with_attributes(attributes)
            .with_service_name(self.service_name.clone())
            .build();
        let batches = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(EXPORT_DELAY)
                    .build(),
            )
            .build();
        Ok(SdkTracerProvider::builder()
            .with_span_processor(batches)
            .with_sampler(self.sampler.sampler())
            .with_resource(resource)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<TraceSettings>, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::from_env(&Env::new(&vars))
    }

    #[test]
    fn off_unless_the_endpoint_is_set() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(settings(&[("OTEL_SERVICE_NAME", "x")]).unwrap(), None);
    }

    #[test]
    fn defaults_with_an_endpoint() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(s.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(s.service_name, DEFAULT_SERVICE_NAME);
        assert_eq!(s.sampler, SamplerChoice::ParentBasedAlwaysOn);
        assert!(s.resource.is_empty());
    }

    #[test]
    fn standard_variables_are_read() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example"),
            ("OTEL_SERVICE_NAME", "origin-eu"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, k8s.pod.name=o-1",
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.service_name, "origin-eu");
        assert_eq!(
            s.resource,
            vec![
                ("deployment.environment".into(), "prod".into()),
                ("k8s.pod.name".into(), "o-1".into())
            ]
        );
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(0.25));
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_the_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        for (pairs, variable) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:s3cret@host")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://host/?token=s3cret")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![endpoint, ("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                vec![endpoint, ("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            (
                vec![endpoint, ("OTEL_SERVICE_NAME", "a\nb")],
                "OTEL_SERVICE_NAME",
            ),
        ] {
            let error = settings(&pairs).unwrap_err();
            assert_eq!(error.variable, variable, "{pairs:?}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
    }
}
