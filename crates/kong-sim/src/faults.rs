//! Injected faults (`PUT /_sim/faults`, DESIGN.md): latency with jitter, error rates,
//! connection resets and hangs, and per-path rules, all drawn from one seeded generator
//! so a run can be repeated exactly.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The fault settings, as `PUT /_sim/faults` takes them and `GET /_sim/faults` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Share of requests answered with one of `error_statuses` (0.0..=1.0).
    pub error_rate: f64,
    /// Statuses for `error_rate`; default 500, 502, 503, 504.
    pub error_statuses: Vec<u16>,
    /// Share of requests whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Share of requests never answered (until the client gives up, at most 60 s).
    pub hang_rate: f64,
    pub seed: u64,
    pub rules: Vec<Rule>,
}

/// A fault for matching requests, applied before the rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// Method to match; any when absent.
    pub method: Option<String>,
    /// Path glob: `*` matches any characters, `/services/*` every service path.
    pub path: String,
    /// Answer with this status...
    pub status: Option<u16>,
    /// ...or close the connection...
    pub reset: bool,
    /// ...or never answer.
    pub hang: bool,
    /// With `status`: apply the request first, then fail the answer (the write happened;
    /// a client must retry idempotently).
    pub after: bool,
    /// How many matching requests to fail; all of them when absent.
    pub count: Option<u64>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    /// Answer with this status without running the request.
    Error(u16),
    /// Run the request, then answer with this status.
    ErrorAfter(u16),
    Reset,
    Hang,
}

/// splitmix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counts of injected faults, reported in `/_sim/stats`.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct FaultCounts {
    pub errors: u64,
    pub resets: u64,
    pub hangs: u64,
}

#[derive(Debug)]
struct State {
    config: FaultConfig,
    rng: Rng,
    /// Remaining uses of each rule with a `count`.
    remaining: Vec<Option<u64>>,
    counts: FaultCounts,
}

/// The live fault settings of one emulator.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Faults {
        let faults = Faults {
            state: Mutex::new(State {
                config: FaultConfig::default(),
                rng: Rng(0),
                remaining: Vec::new(),
                counts: FaultCounts::default(),
            }),
        };
        faults.set(config);
        faults
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the settings; the generator restarts from the seed.
    pub fn set(&self, mut config: FaultConfig) {
        if config.error_statuses.is_empty() {
            config.error_statuses = vec![500, 502, 503, 504];
        }
        let mut s = self.lock();
        s.rng = Rng(config.seed);
        s.remaining = config.rules.iter().map(|r| r.count).collect();
        s.config = config;
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    pub fn counts(&self) -> FaultCounts {
        self.lock().counts
    }

    pub fn reset_counts(&self) {
        self.lock().counts = FaultCounts::default();
    }

    /// The delay before answering: latency ± uniform jitter.
    pub fn latency(&self) -> Duration {
        let mut s = self.lock();
        let base = s.config.latency_ms as f64;
        let jitter = s.config.jitter_ms as f64;
        if base == 0.0 && jitter == 0.0 {
            return Duration::ZERO;
        }
        let offset = if jitter > 0.0 {
            (s.rng.unit() * 2.0 - 1.0) * jitter
        } else {
            0.0
        };
        Duration::from_secs_f64((base + offset).max(0.0) / 1000.0)
    }

    /// Decides the fate of one request: the first matching rule with uses left, else the
    /// rates in the order hang, reset, error.
    pub fn decide(&self, method: &str, path: &str) -> Decision {
        let mut s = self.lock();
        let s = &mut *s;
        for (i, rule) in s.config.rules.iter().enumerate() {
            let method_ok = rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !method_ok || !glob(&rule.path, path) {
                continue;
            }
            if let Some(left) = &mut s.remaining[i] {
                if *left == 0 {
                    continue;
                }
                *left -= 1;
            }
            let decision = if rule.hang {
                Decision::Hang
            } else if rule.reset {
                Decision::Reset
            } else {
                match (rule.status, rule.after) {
                    (Some(st), true) => Decision::ErrorAfter(st),
                    (Some(st), false) => Decision::Error(st),
                    (None, _) => Decision::Error(500),
                }
            };
            count(&mut s.counts, decision);
            return decision;
        }
        let draw = s.rng.unit();
        let (hang, reset, error) = (s.config.hang_rate, s.config.reset_rate, s.config.error_rate);
        let decision = if draw < hang {
            Decision::Hang
        } else if draw < hang + reset {
            Decision::Reset
        } else if draw < hang + reset + error {
            let statuses = &s.config.error_statuses;
            let pick = (s.rng.next_u64() % statuses.len().max(1) as u64) as usize;
            Decision::Error(statuses.get(pick).copied().unwrap_or(500))
        } else {
            Decision::Pass
        };
        count(&mut s.counts, decision);
        decision
    }
}

fn count(c: &mut FaultCounts, d: Decision) {
    match d {
        Decision::Pass => {}
        Decision::Error(_) | Decision::ErrorAfter(_) => c.errors += 1,
        Decision::Reset => c.resets += 1,
        Decision::Hang => c.hangs += 1,
    }
}

/// `*` matches any run of characters (including none).
fn glob(pattern: &str, path: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == path;
    }
    let mut rest = path;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Kong-like bodies for injected errors.
pub fn error_body(status: u16) -> &'static str {
    match status {
        500 => r#"{"message":"An unexpected error occurred"}"#,
        502 => r#"{"message":"An invalid response was received from the upstream server"}"#,
        503 => r#"{"message":"Service unavailable"}"#,
        504 => r#"{"message":"The upstream server is timing out"}"#,
        429 => r#"{"message":"API rate limit exceeded"}"#,
        _ => r#"{"message":"Injected fault"}"#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_paths() {
        assert!(glob("/services/*", "/services/a"));
        assert!(glob("/services/*", "/services/a/routes"));
        assert!(!glob("/services/*", "/routes/a"));
        assert!(glob("*", "/x"));
        assert!(glob("/services", "/services"));
        assert!(glob("/*/plugins", "/routes/r/plugins"));
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig {
            error_rate: 0.3,
            reset_rate: 0.1,
            seed: 7,
            ..FaultConfig::default()
        };
        let a = Faults::new(config.clone());
        let b = Faults::new(config);
        let run = |f: &Faults| {
            (0..200)
                .map(|_| f.decide("GET", "/services"))
                .collect::<Vec<_>>()
        };
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(ra, rb);
        let errors = ra
            .iter()
            .filter(|d| matches!(d, Decision::Error(_)))
            .count();
        assert!((30..90).contains(&errors), "about 30% errors, got {errors}");
    }

    #[test]
    fn rules_come_first_and_run_out() {
        let rule = Rule {
            method: Some("PUT".into()),
            path: "/services/*".into(),
            status: Some(503),
            count: Some(1),
            ..Rule::default()
        };
        let f = Faults::new(FaultConfig {
            rules: vec![rule],
            ..FaultConfig::default()
        });
        assert_eq!(f.decide("GET", "/services/a"), Decision::Pass);
        assert_eq!(f.decide("PUT", "/services/a"), Decision::Error(503));
        assert_eq!(
            f.decide("PUT", "/services/a"),
            Decision::Pass,
            "count exhausted"
        );
        assert_eq!(f.counts().errors, 1);
    }
}
