//! The broker's one reading of wall-clock time. Coordinators take the time
//! as a parameter (or through their environment) so that tests can set it.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
