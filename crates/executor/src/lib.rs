//! The only place carl writes to Kong: it applies a [`Plan`] and nothing else.
//!
//! Ops run as soon as everything they depend on is done, up to `parallelism` at once,
//! with no level-by-level barriers. Every write is idempotent (DESIGN.md decision 5):
//! create is `PUT /{kind}/{id}` with the plan's deterministic id, update is `PATCH` of the
//! changed fields, delete treats 404 as done. So a run that fails or is killed halfway
//! converges when run again. A failed op skips only the ops that depend on it;
//! independent branches go on.
//!
//! A DB-less Kong takes no entity writes: [`config::apply_config`] applies the plan to
//! its whole configuration and loads that at once.

pub mod config;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carl_admin_client::AdminClient;
use carl_planner::{Action, Op, Plan};
use tokio::task::JoinSet;

/// What became of one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Kong (or the network) refused it; the message says why.
    Failed(String),
    /// Not attempted because the op with this index failed.
    Skipped {
        because: usize,
    },
    /// Not attempted because the run was stopped ([`Stop`]) first.
    NotRun,
}

/// How many ops ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
    pub not_run: usize,
}

/// The outcome of every op of a plan, by op index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// HTTP requests sent during the run, retries included.
    pub requests: u64,
    /// The run was stopped before every op could start.
    pub stopped: bool,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| *o == Outcome::Done)
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.outcomes {
            match o {
                Outcome::Done => c.done += 1,
                Outcome::Failed(_) => c.failed += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
                Outcome::NotRun => c.not_run += 1,
            }
        }
        c
    }
}

/// Asks a running [`apply`] to start no new op: those in flight finish and are
/// reported, the rest end [`Outcome::NotRun`]. Clones share the request (Ctrl-C).
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Applies `plan` with at most `parallelism` requests in flight. `on_outcome` is called
/// once per op as it finishes (or is skipped), in completion order.
pub async fn apply(
    client: &AdminClient,
    plan: &Plan,
    parallelism: usize,
    on_outcome: impl FnMut(&Op, &Outcome),
) -> Report {
    apply_until(client, plan, parallelism, &Stop::default(), on_outcome).await
}

/// [`apply`], stopping early (in-flight ops finish) once `stop` is requested.
pub async fn apply_until(
    client: &AdminClient,
    plan: &Plan,
    parallelism: usize,
    stop: &Stop,
    mut on_outcome: impl FnMut(&Op, &Outcome),
) -> Report {
    let started = Instant::now();
    let sent_before = client.requests_sent();
    let n = plan.ops.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting: Vec<usize> = plan.ops.iter().map(|op| op.depends_on.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for op in &plan.ops {
        for &d in &op.depends_on {
            if d < n {
                dependents[d].push(op.index);
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut running = JoinSet::new();
    let parallelism = parallelism.max(1);

    loop {
        while running.len() < parallelism
            && !stop.is_requested()
            && let Some(i) = ready.pop_front()
        {
            let client = client.clone();
            let op = plan.ops[i].clone();
            running.spawn(async move { (i, write(&client, &op).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, outcome) = match joined {
            Ok(result) => result,
            // A panicking write task is a bug in carl; record it rather than abort the run.
            Err(e) => {
                tracing::error!("write task failed: {e}");
                continue;
            }
        };
        on_outcome(&plan.ops[i], &outcome);
        let failed = outcome != Outcome::Done;
        outcomes[i] = Some(outcome);
        if failed {
            skip_dependents(plan, &dependents, i, &mut outcomes, &mut on_outcome);
        } else {
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 && outcomes[d].is_none() {
                    ready.push_back(d);
                }
            }
        }
    }
    Report {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::NotRun))
            .collect(),
        elapsed: started.elapsed(),
        requests: client.requests_sent() - sent_before,
        stopped: stop.is_requested(),
    }
}

/// Marks everything downstream of the failed op `root` as skipped.
fn skip_dependents(
    plan: &Plan,
    dependents: &[Vec<usize>],
    root: usize,
    outcomes: &mut [Option<Outcome>],
    on_outcome: &mut impl FnMut(&Op, &Outcome),
) {
    let mut stack = dependents[root].clone();
    while let Some(d) = stack.pop() {
        if outcomes[d].is_some() {
            continue;
        }
        let outcome = Outcome::Skipped { because: root };
        on_outcome(&plan.ops[d], &outcome);
        outcomes[d] = Some(outcome);
        stack.extend(dependents[d].iter().copied());
    }
}

async fn write(client: &AdminClient, op: &Op) -> Outcome {
    let result = match op.action {
        Action::Create => client
            .create_at(op.kind, &op.path, &op.id, &op.body())
            .await
            .map(drop),
        Action::Update => client.patch_at(&op.path, &op.body()).await.map(drop),
        Action::Delete => client.delete_at(&op.path).await,
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(match e.status() {
            Some(status) => format!("{status} {}", e.kong_message()),
            None => e.to_string(),
        }),
    }
}
