//! The origin's own process figures (CPU seconds, resident memory, open and maximum file
//! descriptors, start time), read from `/proc/self` when `/metrics` is scraped, so they cost
//! nothing between scrapes and are never stale. The parsers are plain functions over the
//! files' text (unit-tested); only [`read`] touches the file system. Off Linux, [`read`]
//! answers nothing and the series are simply absent.

/// One reading of the process.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit of open file descriptors (`None`: unlimited).
    pub max_fds: Option<u64>,
    /// Start time, Unix seconds.
    pub start_time_seconds: f64,
}

/// The fields of `/proc/self/stat` the metrics use, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `utime` + `stime`, clock ticks.
    pub cpu_ticks: u64,
    /// `starttime`: clock ticks after boot.
    pub start_ticks: u64,
    /// `rss`: pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0 here, so field N is index N - 3.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        rss_pages: field(24)?,
    })
}

/// The boot time (`btime`, Unix seconds) from `/proc/stat`.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft "Max open files" limit from `/proc/<pid>/limits`: `Some(None)` when unlimited.
pub fn parse_max_fds(text: &str) -> Option<Option<u64>> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// Combines the parsed files into a reading, given the clock ticks per second and page size.
pub fn reading(
    stat: Stat,
    boot_time: u64,
    ticks_per_second: u64,
    page_size: u64,
    open_fds: u64,
    max_fds: Option<u64>,
) -> Reading {
    let ticks = ticks_per_second.max(1) as f64;
    Reading {
        cpu_seconds: stat.cpu_ticks as f64 / ticks,
        resident_bytes: stat.rss_pages.saturating_mul(page_size),
        open_fds,
        max_fds,
        start_time_seconds: boot_time as f64 + stat.start_ticks as f64 / ticks,
    }
}

/// Reads this process now: four small files and one directory listing (`/proc/self/fd`).
#[cfg(target_os = "linux")]
pub fn read() -> Option<Reading> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| parse_max_fds(&t))
        .flatten();
    // The listing's own descriptor is counted too: one more than at rest, as every
    // exporter that counts this way reports.
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(reading(
        stat,
        boot,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
        open_fds,
        max_fds,
    ))
}

/// Off Linux there is no `/proc`: no reading.
#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<Reading> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line, with a command name that holds a space and a parenthesis.
    const STAT: &str = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1234 0 5 0 \
        250 130 0 0 20 0 9 0 1500 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = parse_stat(STAT).unwrap();
        assert_eq!(
            stat,
            Stat {
                cpu_ticks: 380,
                start_ticks: 1500,
                rss_pages: 2048
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn boot_time_and_fd_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
            Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(Some(1024)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_fds(unlimited), Some(None));
        assert_eq!(parse_max_fds("nothing"), None);
    }

    #[test]
    fn reading_converts_units() {
        let stat = parse_stat(STAT).unwrap();
        let r = reading(stat, 1_700_000_000, 100, 4096, 12, Some(1024));
        assert!((r.cpu_seconds - 3.8).abs() < 1e-9);
        assert_eq!(r.resident_bytes, 2048 * 4096);
        assert!((r.start_time_seconds - 1_700_000_015.0).abs() < 1e-6);
        assert_eq!((r.open_fds, r.max_fds), (12, Some(1024)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let r = read().expect("/proc/self is readable");
        assert!(r.resident_bytes > 0 && r.open_fds >= 3);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(r.start_time_seconds <= now + 1.0 && r.start_time_seconds > now - 86_400.0 * 365.0);
    }
}
