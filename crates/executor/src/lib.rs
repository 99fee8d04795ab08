//! The only place carl writes to Kong: it applies a [`Plan`] and nothing else.
//!
//! Ops run as soon as everything they depend on is done, up to `parallelism` at once,
//! with no level-by-level barriers. Every write is idempotent (DESIGN.md decision 5):
//! create is `PUT /{kind}/{id}` with the plan's deterministic id, update is `PATCH` of the
//! changed fields, delete treats 404 as done. So a run that fails or is killed halfway
//! converges when run again. A failed op skips only the ops that depend on it;
//! independent branches go on.

use std::collections::VecDeque;

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
}

/// The outcome of every op of a plan, by op index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| *o == Outcome::Done)
    }

    /// How many ops ended each way: (done, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for o in &self.outcomes {
            match o {
                Outcome::Done => c.0 += 1,
                Outcome::Failed(_) => c.1 += 1,
                Outcome::Skipped { .. } => c.2 += 1,
            }
        }
        c
    }
}

/// Applies `plan` with at most `parallelism` requests in flight. `on_outcome` is called
/// once per op as it finishes (or is skipped), in completion order.
pub async fn apply(
    client: &AdminClient,
    plan: &Plan,
    parallelism: usize,
    mut on_outcome: impl FnMut(&Op, &Outcome),
) -> Report {
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
            .map(|o| o.unwrap_or(Outcome::Failed("not run: carl stopped before it".into())))
            .collect(),
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
            .create_at(op.kind, &op.path, &op.id, &op.body)
            .await
            .map(drop),
        Action::Update => client.patch_at(&op.path, &op.body).await.map(drop),
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
