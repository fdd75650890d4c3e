//! Query strings: the parameters both servers read, parsed one way.

use crate::error::ApiError;
use crate::limits::{MAX_AT_MS, MIN_AT_MS};

/// The raw value of `name` in a query string (no leading `?`); the first one wins. Values are
/// not percent-decoded: every parameter of this API is a plain integer.
pub fn raw<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `at`: a Unix time in milliseconds, `0..=253402300799999` (up to the end of year 9999), if
/// present.
pub fn at(query: &str) -> Result<Option<i64>, ApiError> {
    let Some(value) = raw(query, "at") else {
        return Ok(None);
    };
    match value.parse::<i64>() {
        Ok(ms)
            if (MIN_AT_MS..=MAX_AT_MS).contains(&ms)
                && value.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(Some(ms))
        }
        _ => Err(ApiError::invalid(
            "at",
            format!(
                "must be a Unix time in milliseconds, {MIN_AT_MS}..={MAX_AT_MS}, got {value:?}"
            ),
        )),
    }
}

/// A step number parameter (`from`, `to`), if present.
pub fn step(query: &str, name: &'static str) -> Result<Option<u64>, ApiError> {
    let Some(value) = raw(query, name) else {
        return Ok(None);
    };
    match value.parse::<u64>() {
        Ok(step) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(step)),
        _ => Err(ApiError::invalid(
            name,
            format!("must be a step number (an integer >= 0), got {value:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_parameter() {
        assert_eq!(at(""), Ok(None));
        assert_eq!(at("x=1"), Ok(None));
        assert_eq!(at("at=1700000000000"), Ok(Some(1_700_000_000_000)));
        assert_eq!(at("x=1&at=5&at=6"), Ok(Some(5)));
        assert_eq!(at("at=253402300799999"), Ok(Some(MAX_AT_MS)));
        for bad in [
            "at=",
            "at",
            "at=-1",
            "at=+1",
            "at=1.5",
            "at=abc",
            "at=253402300800000",
            "at=9007199254740993",
            "at=99999999999999999999999",
        ] {
            let e = at(bad).unwrap_err();
            assert_eq!((e.status(), e.field.as_deref()), (422, Some("at")), "{bad}");
        }
    }

    #[test]
    fn step_parameters() {
        assert_eq!(step("from=3&to=9", "to"), Ok(Some(9)));
        assert_eq!(step("", "from"), Ok(None));
        assert!(step("from=-1", "from").is_err());
    }
}
