//! Request counters for `GET /_sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    by_method: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    by_route: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<Counts>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

impl Stats {
    /// A request started; it stays in flight until the guard drops (also when the
    /// client goes away mid-request).
    pub fn start(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    /// A request finished. `route` is `"PUT /services/{key}"`, or None when no
    /// route matched.
    pub fn finish(&self, method: &str, status: u16, route: Option<String>) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total += 1;
        *c.by_method.entry(method.to_owned()).or_default() += 1;
        *c.by_status.entry(status.to_string()).or_default() += 1;
        if let Some(route) = route {
            *c.by_route.entry(route).or_default() += 1;
        }
    }

    /// Requests counted so far.
    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    pub fn reset(&self) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = Counts::default();
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn to_json(&self, entities: Value) -> Value {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "requests": {
                "total": c.total,
                "by_method": c.by_method,
                "by_status": c.by_status,
                "by_route": c.by_route,
            },
            "peak_in_flight": self.peak_in_flight.load(Ordering::SeqCst),
            "entities": entities,
        })
    }
}

/// Marks one request in flight while alive.
pub struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
