//! One error for every setting read from the environment (or a `[vars]` table): it names the
//! variable, so an operator knows what to fix, and never holds the value (it may be a secret).

use std::fmt;

/// A setting that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The variable's name, e.g. `CASSANDRA_HOSTS`.
    pub variable: &'static str,
    /// What is wrong with it (never the value of a secret).
    pub message: String,
}

impl SettingsError {
    /// An error about `variable`.
    pub fn new(variable: &'static str, message: impl Into<String>) -> SettingsError {
        SettingsError {
            variable,
            message: message.into(),
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.message)
    }
}

impl std::error::Error for SettingsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable() {
        let error = SettingsError::new("PORT", "must be a number");
        assert_eq!(error.to_string(), "invalid PORT: must be a number");
        assert_eq!(error.variable, "PORT");
    }
}
