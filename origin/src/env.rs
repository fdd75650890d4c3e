//! Reading settings variables from a map (the process environment, or a test's map), for the
//! per-section parsers that each subsystem owns ([`crate::config`] assembles them).
//!
//! A leaf: it knows no subsystem, so every subsystem can parse its own variables with it.

use std::collections::HashMap;

use kernel::SettingsError;

/// Variables by name; missing or blank means "use the default".
#[derive(Debug, Clone, Copy)]
pub struct Env<'a>(&'a HashMap<String, String>);

impl<'a> Env<'a> {
    /// Reads from `vars`.
    pub fn new(vars: &'a HashMap<String, String>) -> Env<'a> {
        Env(vars)
    }

    /// The value of `variable`, unless it is missing or blank.
    pub fn get(&self, variable: &str) -> Option<&'a str> {
        self.0
            .get(variable)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The same lookup as an owned value, for the parsers that take a lookup function.
    pub fn lookup(&self, variable: &str) -> Option<String> {
        self.0.get(variable).cloned()
    }

    /// `variable` parsed as a `T` and accepted by `valid`, or `default` when unset; anything
    /// else is "`raw` is not `expected`".
    pub fn parse<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
        expected: &str,
    ) -> Result<T, SettingsError> {
        let Some(raw) = self.get(variable) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if valid(&value) => Ok(value),
            _ => Err(SettingsError::new(
                variable,
                format!("{raw:?} is not {expected}"),
            )),
        }
    }

    /// An integer variable validated by one of the contract's constructors (`TickMs::parse`,
    /// ...), so the origin's defaults follow the same rule as clients' values.
    pub fn number<T>(
        &self,
        variable: &'static str,
        default: u64,
        parse: impl Fn(u64) -> Result<T, api::ids::InvalidValue>,
        expected: &str,
    ) -> Result<T, SettingsError> {
        let value = self.parse(variable, default, |_| true, expected)?;
        parse(value).map_err(|_| SettingsError::new(variable, format!("{value} is not {expected}")))
    }
}

/// Whether `value` is `host:port` with a non-empty host and a port in 1..=65535.
pub fn valid_host_port(value: &str) -> bool {
    match value.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}
