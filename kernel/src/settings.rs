//! One error for every setting read from the environment (or a `[vars]` table): it names the
//! variable, so an operator knows what to fix, and never holds the value (it may be a secret).

use std::fmt;

use crate::Secret;

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

/// Reads a secret setting: `NAME` itself, or the contents of the file named by `NAME_FILE`
/// (Docker and Kubernetes secrets), surrounding whitespace trimmed. Both set is an error (which
/// one would win is a guess an operator should not have to make); neither is `Ok(None)`.
///
/// `lookup` answers a variable's raw value; `read_file` a file's contents (the edge, which has
/// no files, passes one that always fails). `file_variable` must be `NAME_FILE`.
pub fn secret_setting(
    lookup: impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> std::io::Result<String>,
    variable: &'static str,
    file_variable: &'static str,
) -> Result<Option<Secret>, SettingsError> {
    let direct = lookup(variable).filter(|v| !v.trim().is_empty());
    let path = lookup(file_variable).filter(|v| !v.trim().is_empty());
    match (direct, path) {
        (Some(_), Some(_)) => Err(SettingsError::new(
            variable,
            format!("is set both directly and through {file_variable}: set only one"),
        )),
        (Some(value), None) => Ok(Some(Secret::new(value.trim()))),
        (None, Some(path)) => match read_file(path.trim()) {
            Ok(contents) if !contents.trim().is_empty() => Ok(Some(Secret::new(contents.trim()))),
            Ok(_) => Err(SettingsError::new(
                file_variable,
                format!("the file {:?} is empty", path.trim()),
            )),
            Err(error) => Err(SettingsError::new(
                file_variable,
                format!("cannot read {:?}: {error}", path.trim()),
            )),
        },
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable() {
        let error = SettingsError::new("PORT", "must be a number");
        assert_eq!(error.to_string(), "invalid PORT: must be a number");
        assert_eq!(error.variable, "PORT");
    }

    fn read(
        vars: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Result<Option<Secret>, SettingsError> {
        secret_setting(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            },
            |path| {
                files
                    .iter()
                    .find(|(k, _)| *k == path)
                    .map(|(_, v)| v.to_string())
                    .ok_or_else(|| {
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
                    })
            },
            "KEY",
            "KEY_FILE",
        )
    }

    #[test]
    fn secret_from_the_variable_or_its_file() {
        assert_eq!(read(&[], &[]), Ok(None));
        assert_eq!(read(&[("KEY", "  ")], &[]), Ok(None));
        assert_eq!(
            read(&[("KEY", " abc\n")], &[]).unwrap().unwrap().expose(),
            "abc"
        );
        let from_file = read(
            &[("KEY_FILE", "/run/secrets/key")],
            &[("/run/secrets/key", "xyz\n")],
        );
        assert_eq!(from_file.unwrap().unwrap().expose(), "xyz");
    }

    #[test]
    fn secret_setting_errors_name_the_variable_and_not_the_value() {
        let both = read(&[("KEY", "abc"), ("KEY_FILE", "/f")], &[("/f", "abc")]).unwrap_err();
        assert_eq!(both.variable, "KEY");
        let missing = read(&[("KEY_FILE", "/nope")], &[]).unwrap_err();
        assert_eq!(missing.variable, "KEY_FILE");
        assert!(missing.message.contains("/nope"));
        let empty = read(&[("KEY_FILE", "/f")], &[("/f", " \n")]).unwrap_err();
        assert_eq!(empty.variable, "KEY_FILE");
        assert!(!both.to_string().contains("abc"));
    }
}
