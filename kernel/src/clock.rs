//! The wall clock, in the unit the whole system speaks: milliseconds since the Unix epoch.
//!
//! Native only: on `wasm32-unknown-unknown` `SystemTime::now` panics, so the edge reads the
//! runtime's clock (`Date.now()`) and passes the time into the same pure functions.

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn is_after_2025() {
        // 2025-01-01T00:00:00Z: a clock reading before it means the unit or epoch is wrong.
        assert!(super::now_ms() > 1_735_689_600_000);
    }
}
