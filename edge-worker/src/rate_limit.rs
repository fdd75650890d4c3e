//! Per-isolate rate limits: keyed token buckets in isolate memory, pure Rust (the caller passes
//! the time), so they are unit-tested natively and cost no I/O on the request path.
//!
//! A [`Quota`] `n/seconds` is a bucket of `n` tokens that refills at `n` per `seconds`: a client
//! may burst `n` requests, then gets one more every `seconds / n`. A refused request learns
//! exactly when the next token arrives ([`Decision::Limited`]), which becomes `Retry-After`.
//! The bucket itself is the workspace's one token bucket, [`kernel::gcra`]: a key's whole state
//! is one number (its theoretical arrival time).
//!
//! Memory is bounded: at most `max_keys` buckets per [`Limiter`]. When full, only buckets that
//! have refilled completely are dropped (forgetting them changes nothing: a new bucket starts
//! full). A bucket that is still draining is never dropped, since that would hand its client a
//! fresh budget: churning keys cannot launder a penalty or a half-spent burst. While every held
//! bucket is draining, newcomers share one overflow bucket of the same quota (fair: each new key
//! gets the same chance, nobody held is forgiven) until a held bucket refills. It takes more than
//! `max_keys` distinct clients active within one refill period to get there; raise
//! `RATE_LIMIT_MAX_KEYS` if honest traffic does.
//!
//! Per isolate means per Worker instance: Cloudflare runs many, so a client spread over them
//! gets up to that many budgets. That is why starts are also checked against the binding when
//! it is bound; reads stay on these buckets only, which keeps them free of any extra round trip.

use std::collections::HashMap;

use kernel::SettingsError;
use kernel::gcra::Rate;

/// Start budget per client IP (`START_RATE_LIMIT_PER_IP`).
pub const START_PER_IP: &str = "START_RATE_LIMIT_PER_IP";
/// Start budget per user id (`START_RATE_LIMIT_PER_USER`).
pub const START_PER_USER: &str = "START_RATE_LIMIT_PER_USER";
/// Read budget per client IP (`READ_RATE_LIMIT_PER_IP`): game records, states, exits.
pub const READ_PER_IP: &str = "READ_RATE_LIMIT_PER_IP";
/// Most keys each limiter keeps (`RATE_LIMIT_MAX_KEYS`).
pub const MAX_KEYS: &str = "RATE_LIMIT_MAX_KEYS";
/// Every variable this module reads.
pub const VARS: [&str; 4] = [START_PER_IP, START_PER_USER, READ_PER_IP, MAX_KEYS];

/// Defaults: a person starts a handful of games a minute; a page reads a few times a second.
pub const DEFAULT_START_PER_IP: Quota = Quota::new(30, 60);
/// See [`DEFAULT_START_PER_IP`].
pub const DEFAULT_START_PER_USER: Quota = Quota::new(10, 60);
/// See [`DEFAULT_START_PER_IP`].
pub const DEFAULT_READ_PER_IP: Quota = Quota::new(600, 60);
/// See [`DEFAULT_START_PER_IP`].
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// `burst` requests, refilled at `burst` per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bucket size: requests allowed at once.
    pub burst: u32,
    /// Seconds to refill an empty bucket.
    pub period_secs: u32,
}

impl Quota {
    /// A quota (both values at least 1).
    pub const fn new(burst: u32, period_secs: u32) -> Quota {
        Quota {
            burst: if burst == 0 { 1 } else { burst },
            period_secs: if period_secs == 0 { 1 } else { period_secs },
        }
    }

    /// Parses `n/seconds` (e.g. `30/60`), or `off` for no limit (`None`).
    pub fn parse(raw: &str) -> Result<Option<Quota>, String> {
        Ok(api::limits::parse_rate_budget(raw)?.map(|(n, s)| Quota::new(n, s)))
    }

    /// The token bucket of this quota.
    pub fn rate(self) -> Rate {
        Rate::new(self.burst, u64::from(self.period_secs) * 1000)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Go ahead; `remaining` whole tokens are left.
    Allowed {
        /// Tokens left after this request.
        remaining: u32,
    },
    /// Over the quota; the next token arrives in `retry_after_ms`.
    Limited {
        /// Milliseconds until a retry can succeed (at least 1).
        retry_after_ms: u64,
    },
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn allowed(self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// `Retry-After` in whole seconds (rounded up, at least 1), for a limited request.
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Decision::Allowed { .. } => None,
            Decision::Limited { retry_after_ms } => Some(retry_after_ms.div_ceil(1000).max(1)),
        }
    }
}

/// The bucket key of a client address: an IPv4 address as it is, an IPv6 address as its /64
/// (one host usually holds a whole /64, so per-address keys would let it mint budgets), and
/// anything unparsable as it came.
pub fn ip_key(ip: &str) -> std::borrow::Cow<'_, str> {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let prefix = std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            std::borrow::Cow::Owned(format!("{prefix}/64"))
        }
        _ => std::borrow::Cow::Borrowed(ip),
    }
}

/// Keyed token buckets under one quota, with at most `max_keys` keys.
#[derive(Debug, Clone)]
pub struct Limiter {
    quota: Quota,
    rate: Rate,
    max_keys: usize,
    /// Each key's theoretical arrival time (Unix ms).
    buckets: HashMap<String, u64>,
    /// The bucket newcomers share while every held key is under penalty.
    overflow: u64,
    /// The latest time seen: a clock that steps back is read as this, so it neither refills
    /// nor drains anything.
    latest_ms: u64,
}

impl Limiter {
    /// An empty limiter.
    pub fn new(quota: Quota, max_keys: usize) -> Limiter {
        Limiter {
            quota,
            rate: quota.rate(),
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
            overflow: 0,
            latest_ms: 0,
        }
    }

    /// Its quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Takes one token from `key`'s bucket at `now_ms`, if it has one.
    pub fn check(&mut self, key: &str, now_ms: u64) -> Decision {
        self.latest_ms = self.latest_ms.max(now_ms);
        let now_ms = self.latest_ms;
        let tat = if !self.buckets.contains_key(key)
            && self.buckets.len() >= self.max_keys
            && !self.make_room(now_ms)
        {
            // Every held client is still draining: newcomers share one overflow bucket rather
            // than grow the table or forgive a held client.
            &mut self.overflow
        } else {
            // A new bucket is full: its arrival time is in the past.
            self.buckets.entry(key.to_owned()).or_insert(0)
        };
        match self.rate.spend(tat, now_ms) {
            Ok(remaining) => Decision::Allowed { remaining },
            Err(refused) => Decision::Limited {
                retry_after_ms: refused.retry_after_ms,
            },
        }
    }

    /// Frees slots by dropping every bucket that has refilled completely, and only those: a
    /// draining bucket (partly spent or under penalty) is kept, since forgetting it would hand
    /// its client a full one. Returns whether a slot is free.
    fn make_room(&mut self, now_ms: u64) -> bool {
        let rate = self.rate;
        self.buckets.retain(|_, tat| !rate.is_full(*tat, now_ms));
        self.buckets.len() < self.max_keys
    }
}

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /edge/game/start`: per IP and per user.
    Start,
    /// Reads and exits: per IP, more loosely.
    Read,
}

/// The edge's limits, from `[vars]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Starts per client IP (`None`: off).
    pub start_per_ip: Option<Quota>,
    /// Starts per user id.
    pub start_per_user: Option<Quota>,
    /// Reads (and exits) per client IP.
    pub read_per_ip: Option<Quota>,
    /// Most keys each limiter keeps.
    pub max_keys: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            start_per_ip: Some(DEFAULT_START_PER_IP),
            start_per_user: Some(DEFAULT_START_PER_USER),
            read_per_ip: Some(DEFAULT_READ_PER_IP),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl Settings {
    /// Reads [`VARS`]; absent or empty means the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let quota = |variable: &'static str, default: Quota| match get(variable) {
            None => Ok(Some(default)),
            Some(raw) => Quota::parse(&raw).map_err(|message| SettingsError { variable, message }),
        };
        let max_keys = match get(MAX_KEYS) {
            None => DEFAULT_MAX_KEYS,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n @ 100..=1_000_000) => n,
                _ => {
                    return Err(SettingsError {
                        variable: MAX_KEYS,
                        message: format!("{raw:?} is not a number in 100..=1000000"),
                    });
                }
            },
        };
        Ok(Settings {
            start_per_ip: quota(START_PER_IP, DEFAULT_START_PER_IP)?,
            start_per_user: quota(START_PER_USER, DEFAULT_START_PER_USER)?,
            read_per_ip: quota(READ_PER_IP, DEFAULT_READ_PER_IP)?,
            max_keys,
        })
    }
}

/// Every limiter of an isolate.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// What the limiters were built for (`None`: not configured yet).
    settings: Option<Settings>,
    start_ip: Option<Limiter>,
    start_user: Option<Limiter>,
    read_ip: Option<Limiter>,
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client IP's.
    Ip,
    /// The user's.
    User,
}

impl Limits {
    /// Limiters for `settings`; buckets are kept while the settings stay the same.
    pub fn configure(&mut self, settings: Settings) {
        if self.settings == Some(settings) {
            return;
        }
        let make = |q: Option<Quota>| q.map(|q| Limiter::new(q, settings.max_keys));
        *self = Limits {
            settings: Some(settings),
            start_ip: make(settings.start_per_ip),
            start_user: make(settings.start_per_user),
            read_ip: make(settings.read_per_ip),
        };
    }

    /// Spends one request of `kind` for `ip` (and `user`, for starts). The IP is charged first;
    /// a start refused by its user's budget has still spent its IP's token, so rotating user
    /// ids from one address does not buy more starts.
    pub fn check(
        &mut self,
        kind: Kind,
        ip: &str,
        user: Option<&str>,
        now_ms: u64,
    ) -> Result<(), (Scope, Decision)> {
        self.check_ip(kind, ip, now_ms)?;
        match (kind, user) {
            (Kind::Start, Some(user)) => self.check_user(user, now_ms),
            _ => Ok(()),
        }
    }

    /// Spends one request of `kind` from `ip`'s budget only (keyed by [`ip_key`]). A start
    /// calls this before reading its body, so a client over its budget costs no body read,
    /// then [`Limits::check_user`] once the body names the user.
    pub fn check_ip(&mut self, kind: Kind, ip: &str, now_ms: u64) -> Result<(), (Scope, Decision)> {
        let limiter = match kind {
            Kind::Start => self.start_ip.as_mut(),
            Kind::Read => self.read_ip.as_mut(),
        };
        match limiter.map(|l| l.check(&ip_key(ip), now_ms)) {
            Some(d) if !d.allowed() => Err((Scope::Ip, d)),
            _ => Ok(()),
        }
    }

    /// Spends one start from `user`'s budget.
    pub fn check_user(&mut self, user: &str, now_ms: u64) -> Result<(), (Scope, Decision)> {
        match self.start_user.as_mut().map(|l| l.check(user, now_ms)) {
            Some(d) if !d.allowed() => Err((Scope::User, d)),
            _ => Ok(()),
        }
    }

    /// Keys held by each limiter (start/IP, start/user, read/IP), for `/edge/regions`.
    pub fn sizes(&self) -> [usize; 3] {
        [&self.start_ip, &self.start_user, &self.read_ip]
            .map(|l| l.as_ref().map_or(0, Limiter::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut l = Limiter::new(Quota::new(3, 3), 100);
        for remaining in [2, 1, 0] {
            assert_eq!(l.check("a", 0), Decision::Allowed { remaining });
        }
        let limited = l.check("a", 0);
        assert_eq!(
            limited,
            Decision::Limited {
                retry_after_ms: 1000
            }
        );
        assert_eq!(limited.retry_after_secs(), Some(1));
        assert_eq!(
            l.check("a", 400),
            Decision::Limited {
                retry_after_ms: 600
            }
        );
        assert!(l.check("a", 1000).allowed());
        assert!(!l.check("a", 1000).allowed());
        // Another key has its own bucket.
        assert!(l.check("b", 1000).allowed());
        // Idle for long: refilled to the burst, never beyond.
        for _ in 0..3 {
            assert!(l.check("a", 1_000_000).allowed());
        }
        assert!(!l.check("a", 1_000_000).allowed());
    }

    #[test]
    fn clock_steps_back_safely() {
        let mut l = Limiter::new(Quota::new(1, 10), 10);
        assert!(l.check("a", 50_000).allowed());
        let d = l.check("a", 10);
        assert!(!d.allowed());
        assert_eq!(d.retry_after_secs(), Some(10));
    }

    #[test]
    fn memory_is_bounded_and_only_full_buckets_are_dropped() {
        let mut l = Limiter::new(Quota::new(2, 60), 100);
        // 100 drained keys, then 1000 more distinct keys: never more than 100 held.
        for i in 0..100 {
            l.check(&format!("drained-{i}"), 0);
            l.check(&format!("drained-{i}"), 0);
        }
        for i in 0..1000u64 {
            l.check(&format!("k{i}"), i);
            assert!(l.len() <= 100, "{}", l.len());
        }
        // A full (refilled) bucket is dropped; a draining one is kept.
        let mut l = Limiter::new(Quota::new(2, 60), 2);
        l.check("idle", 0);
        l.check("busy", 59_000);
        l.check("busy", 59_000);
        l.check("new", 60_000);
        assert_eq!(l.len(), 2);
        assert!(!l.check("busy", 60_000).allowed(), "busy kept its state");
    }

    #[test]
    fn a_half_spent_bucket_is_never_evicted() {
        // Burst 10 per 100 s: one token back every 10 s.
        let mut l = Limiter::new(Quota::new(10, 100), 3);
        // Three clients each spend 9 of 10: not empty, not full: still draining.
        for c in ["a", "b", "c"] {
            for _ in 0..9 {
                assert!(l.check(c, 0).allowed());
            }
        }
        // A churn of new keys must not free any of them (which would hand back a fresh 10).
        for i in 0..100 {
            l.check(&format!("churn-{i}"), 1_000);
        }
        assert_eq!(l.len(), 3);
        for c in ["a", "b", "c"] {
            assert!(l.check(c, 1_000).allowed(), "{c}: its last token");
            assert!(!l.check(c, 1_000).allowed(), "{c}: kept its spent state");
        }
        // Once a bucket has refilled completely it may go, and a newcomer gets its own bucket.
        let mut l = Limiter::new(Quota::new(10, 100), 1);
        assert!(l.check("a", 0).allowed());
        assert!(l.check("newcomer", 5_000).allowed());
        assert!(
            l.buckets.contains_key("a"),
            "a is still draining at 5 s: kept"
        );
        assert!(l.check("newcomer", 20_000).allowed());
        assert!(l.buckets.contains_key("newcomer") && l.len() == 1);
    }

    #[test]
    fn churning_keys_never_frees_a_penalised_client() {
        let mut l = Limiter::new(Quota::new(2, 60), 10);
        // Ten clients drain their buckets and stay under penalty.
        for i in 0..10 {
            for _ in 0..3 {
                l.check(&format!("abuser-{i}"), 1_000);
            }
        }
        // A flood of fresh keys: the table stays bounded, no abuser gets a fresh bucket, and
        // the newcomers share one overflow bucket (its burst, then refused).
        let fresh: Vec<bool> = (0..50)
            .map(|i| l.check(&format!("fresh-{i}"), 1_000).allowed())
            .collect();
        assert_eq!(fresh.iter().filter(|a| **a).count(), 2, "{fresh:?}");
        assert!(l.len() <= 10);
        for i in 0..10 {
            assert!(
                !l.check(&format!("abuser-{i}"), 1_000).allowed(),
                "abuser-{i}"
            );
        }
        // Once penalties run out, newcomers get their own buckets again.
        assert!(l.check("fresh-later", 200_000).allowed());
        assert!(l.check("fresh-later", 200_000).allowed());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        assert_eq!(ip_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(ip_key("2001:db8:1:2:bbbb::9"), ip_key("2001:db8:1:2::1"));
        assert_ne!(ip_key("2001:db8:1:3::1"), ip_key("2001:db8:1:2::1"));
        assert_eq!(ip_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(ip_key("unknown"), "unknown");
        let mut limits = Limits::default();
        limits.configure(Settings {
            start_per_ip: Some(Quota::new(1, 60)),
            start_per_user: None,
            read_per_ip: None,
            max_keys: 100,
        });
        assert!(limits.check(Kind::Start, "2001:db8::1", None, 0).is_ok());
        assert!(
            limits.check(Kind::Start, "2001:db8::2", None, 0).is_err(),
            "another address of the same /64 shares the budget"
        );
    }

    #[test]
    fn quotas_parse() {
        assert_eq!(Quota::parse("30/60"), Ok(Some(Quota::new(30, 60))));
        assert_eq!(Quota::parse(" 5 / 1 "), Ok(Some(Quota::new(5, 1))));
        assert_eq!(Quota::parse("OFF"), Ok(None));
        for bad in ["", "30", "0/60", "30/0", "a/b", "-1/60", "30/60/2"] {
            assert!(Quota::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_name_their_variable() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s, Settings::default());
        for var in VARS {
            let err =
                Settings::from_lookup(|n| (n == var).then(|| "nope".to_string())).unwrap_err();
            assert_eq!(err.variable, var);
        }
        let off = Settings::from_lookup(|n| (n == READ_PER_IP).then(|| "off".to_string())).unwrap();
        assert_eq!(off.read_per_ip, None);
    }

    #[test]
    fn starts_spend_ip_then_user_and_reads_are_separate() {
        let mut limits = Limits::default();
        limits.configure(Settings {
            start_per_ip: Some(Quota::new(3, 60)),
            start_per_user: Some(Quota::new(1, 60)),
            read_per_ip: Some(Quota::new(5, 60)),
            max_keys: 100,
        });
        assert!(limits.check(Kind::Start, "1.1.1.1", Some("u"), 0).is_ok());
        let (scope, d) = limits
            .check(Kind::Start, "2.2.2.2", Some("u"), 0)
            .unwrap_err();
        assert_eq!((scope, d.retry_after_secs()), (Scope::User, Some(60)));
        assert!(limits.check(Kind::Start, "1.1.1.1", Some("v"), 0).is_ok());
        // The third start from 1.1.1.1 spends its last IP token on a user that is out.
        assert!(limits.check(Kind::Start, "1.1.1.1", Some("u"), 0).is_err());
        assert_eq!(
            limits
                .check(Kind::Start, "1.1.1.1", Some("w"), 0)
                .unwrap_err()
                .0,
            Scope::Ip
        );
        // Reads have their own budget, untouched by the starts above.
        for _ in 0..5 {
            assert!(limits.check(Kind::Read, "1.1.1.1", None, 0).is_ok());
        }
        assert_eq!(
            limits.check(Kind::Read, "1.1.1.1", None, 0).unwrap_err().0,
            Scope::Ip
        );
        assert_eq!(limits.sizes(), [2, 2, 1]);
        // Reconfiguring with the same settings keeps the buckets.
        let same = limits.settings.unwrap();
        limits.configure(same);
        assert!(limits.check(Kind::Read, "1.1.1.1", None, 0).is_err());
    }

    #[test]
    fn a_start_can_be_charged_to_its_address_before_its_body_is_read() {
        let mut limits = Limits::default();
        limits.configure(Settings {
            start_per_ip: Some(Quota::new(1, 60)),
            start_per_user: Some(Quota::new(5, 60)),
            read_per_ip: Some(Quota::new(5, 60)),
            max_keys: 100,
        });
        assert!(limits.check_ip(Kind::Start, "2001:db8::1", 0).is_ok());
        assert!(limits.check_user("u", 0).is_ok());
        // The address is out (by /64): refused without any user named.
        let (scope, d) = limits.check_ip(Kind::Start, "2001:db8::7", 0).unwrap_err();
        assert_eq!((scope, d.retry_after_secs()), (Scope::Ip, Some(60)));
        // The user budget was charged once, the read budget not at all.
        for _ in 0..4 {
            assert!(limits.check_user("u", 0).is_ok());
        }
        assert!(limits.check_user("u", 0).is_err());
        assert!(limits.check_ip(Kind::Read, "2001:db8::1", 0).is_ok());
    }

    #[test]
    fn off_means_unlimited() {
        let mut limits = Limits::default();
        limits.configure(Settings {
            start_per_ip: None,
            start_per_user: None,
            read_per_ip: None,
            max_keys: 100,
        });
        for _ in 0..10_000 {
            assert!(limits.check(Kind::Start, "ip", Some("u"), 0).is_ok());
        }
        assert_eq!(limits.sizes(), [0, 0, 0]);
    }
}
