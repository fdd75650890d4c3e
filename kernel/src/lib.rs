//! The pieces every seedsync crate needs once and only once: the settings error that names
//! its variable ([`SettingsError`]), a [`Secret`] that never prints itself, a byte comparison
//! whose time does not depend on the contents ([`constant_time_eq`]), the wall clock
//! ([`clock`]) and one token bucket ([`gcra`]).
//!
//! Pure std and no dependencies, so it builds for the origin, the edge Worker (wasm32) and the
//! tools alike.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod gcra;
mod secret;
mod settings;
pub mod stats;

pub use secret::{Secret, constant_time_eq, redact_url};
pub use settings::{SettingsError, secret_setting};
