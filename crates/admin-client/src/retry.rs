//! Retrying what may succeed later: jittered exponential backoff (backon), bounded
//! attempts, `Retry-After` honoured.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::Error;

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Tries in all, the first included: 1 means no retry.
    pub attempts: u32,
    /// The first wait; each next one doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// The longest `Retry-After` carl waits for; a longer one is capped here.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl RetryConfig {
    /// Runs `attempt` until it succeeds, fails permanently, or attempts run out.
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() => {
                    let Some(backoff) = delays.next() else {
                        return Err(e);
                    };
                    let wait = match &e {
                        Error::Api {
                            retry_after: Some(after),
                            ..
                        } => (*after).min(MAX_RETRY_AFTER),
                        _ => backoff,
                    };
                    tracing::info!(error = %e, wait = ?wait, "transient failure; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `Retry-After` as seconds (the form Kong's rate limiting and proxies send).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
