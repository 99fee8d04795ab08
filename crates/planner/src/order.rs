//! The plan's dependency graph (DESIGN.md decision 6) and a stable order of its ops.
//!
//! Edges: a child's write waits for its parent's create; a parent's delete waits for
//! every op that moves or deletes its live children; a write that takes a unique name
//! waits for the op that frees it (a delete, or a rename away).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foldhash::{HashMap, HashSet};

use carl_model::{Kind, Object, Schema};
use serde_json::Value;

use crate::identity::unique_values;
use crate::{Action, Change, Changes, Op, Plan, PlanError, Summary};

/// What the graph needs to know about an op before ordering (kept beside the ops,
/// not in them: the ops are put in order where they lie, never copied).
struct Pending {
    /// Unique values this op gives up, as (kind, `field=value`).
    frees: Vec<(Kind, String)>,
    /// Unique values this op claims.
    takes: Vec<(Kind, String)>,
    /// Ids of entities (by kind) that must exist before this op runs.
    needs: Vec<(Kind, String)>,
    /// The live parents this op detaches from (a delete, or an update changing the
    /// foreign key): their deletes must wait for it.
    leaves: Vec<(Kind, String)>,
    /// For a create that replaces a live entity: the id of the one it replaces.
    replaces: Option<String>,
    /// Ops (by position in `pending`) that must finish first, whatever they touch.
    after: Vec<usize>,
    /// The desired entity this op writes (see [`Plan::sources`]).
    source: Option<usize>,
}

pub(crate) struct Builder {
    ops: Vec<Op>,
    /// `pending[i]` is about `ops[i]`.
    pending: Vec<Pending>,
}

impl Builder {
    /// A builder for at most `ops` ops (one per desired and live entity, and a few
    /// swaps beyond). Reserved, not touched: a doubling list of 70,000 pending ops
    /// held its old and new copies at once, ~45 MB.
    pub(crate) fn with_capacity(ops: usize) -> Builder {
        Builder {
            ops: Vec::with_capacity(ops),
            pending: Vec::with_capacity(ops),
        }
    }
}

fn foreign_ids(kind: Kind, o: &Object) -> Vec<(Kind, String)> {
    kind.foreign_keys()
        .iter()
        .filter_map(|(field, target)| {
            Some((*target, carl_model::foreign_id(o.get(*field)?)?.to_owned()))
        })
        .collect()
}

fn tagged(kind: Kind, values: Vec<String>) -> Vec<(Kind, String)> {
    values.into_iter().map(|v| (kind, v)).collect()
}

/// What one write is: everything but its place in the graph.
pub(crate) struct Write<'a> {
    pub kind: Kind,
    pub id: String,
    pub label: String,
    pub path: String,
    pub schema: &'a Schema,
    /// Index of the desired entity written, if any (not for deletes).
    pub source: Option<usize>,
}

impl Builder {
    /// A create: `changes` and `extra` are what the file says (Kong fills its own
    /// defaults), `fields` the complete entity.
    pub(crate) fn create(
        &mut self,
        w: Write<'_>,
        fields: &Object,
        changes: Changes,
        extra: Object,
        replace: Option<(String, String)>,
    ) {
        let (replaces, reason) = replace.unzip();
        self.pending.push(Pending {
            takes: tagged(w.kind, unique_values(w.kind, w.schema, fields, &w.id)),
            frees: Vec::new(),
            needs: foreign_ids(w.kind, fields),
            leaves: Vec::new(),
            replaces,
            after: Vec::new(),
            source: w.source,
        });
        self.ops.push(Op {
            index: 0,
            action: Action::Create,
            kind: w.kind,
            id: w.id,
            label: w.label,
            path: w.path,
            replace: reason,
            replaces: None,
            changes,
            extra,
            depends_on: Vec::new(),
        });
    }

    pub(crate) fn update(
        &mut self,
        w: Write<'_>,
        live: &Object,
        fields: &Object,
        changes: Vec<Change>,
    ) {
        let before = unique_values(w.kind, w.schema, live, &w.id);
        let after = unique_values(w.kind, w.schema, fields, &w.id);
        let frees = before
            .iter()
            .filter(|v| !after.contains(v))
            .cloned()
            .collect();
        let takes = after
            .iter()
            .filter(|v| !before.contains(v))
            .cloned()
            .collect();
        let mut needs = Vec::new();
        let mut leaves = Vec::new();
        for c in &changes {
            if let Some((_, target)) = w.kind.foreign_keys().iter().find(|(f, _)| *f == c.field) {
                if let Some(new) = carl_model::foreign_id(&c.new) {
                    needs.push((*target, new.to_owned()));
                }
                if let Some(old) = carl_model::foreign_id(&c.old) {
                    leaves.push((*target, old.to_owned()));
                }
            }
        }
        self.pending.push(Pending {
            frees: tagged(w.kind, frees),
            takes: tagged(w.kind, takes),
            needs,
            leaves,
            replaces: None,
            after: Vec::new(),
            source: w.source,
        });
        self.ops.push(Op {
            index: 0,
            action: Action::Update,
            kind: w.kind,
            id: w.id,
            label: w.label,
            path: w.path,
            replace: None,
            replaces: None,
            changes: Changes::Listed(changes),
            extra: Object::new(),
            depends_on: Vec::new(),
        });
    }

    pub(crate) fn delete(&mut self, w: Write<'_>, live: &Object, replace: Option<String>) {
        self.pending.push(Pending {
            frees: tagged(w.kind, unique_values(w.kind, w.schema, live, &w.id)),
            takes: Vec::new(),
            needs: Vec::new(),
            leaves: foreign_ids(w.kind, live),
            replaces: None,
            after: Vec::new(),
            source: w.source,
        });
        self.ops.push(Op {
            index: 0,
            action: Action::Delete,
            kind: w.kind,
            id: w.id,
            label: w.label,
            path: w.path,
            replace,
            replaces: None,
            changes: Changes::Listed(Vec::new()),
            extra: Object::new(),
            depends_on: Vec::new(),
        });
    }

    /// The edges: who must finish before each op.
    fn edges(&self) -> Vec<Vec<usize>> {
        let pending = &self.pending;
        let n = pending.len();
        // Each map is built only when some op looks into it, and a freed value only
        // when some op takes it: deleting a whole gateway frees 270,000 names nobody
        // takes.
        let any_needs = pending.iter().any(|p| !p.needs.is_empty());
        let any_leaves = pending.iter().any(|p| !p.leaves.is_empty());
        let taken: HashSet<&(Kind, String)> = pending.iter().flat_map(|p| &p.takes).collect();
        let mut created: HashMap<(Kind, &str), usize> = HashMap::default();
        let mut deleted: HashMap<(Kind, &str), usize> = HashMap::default();
        // Sized once, not rehashed at every doubling: edges of 270,000 deletes 125 -> 107 ms.
        if any_needs {
            created.reserve(n);
        }
        if any_leaves {
            deleted.reserve(n);
        }
        let mut freed: HashMap<&(Kind, String), Vec<usize>> = HashMap::default();
        for (i, (p, op)) in pending.iter().zip(&self.ops).enumerate() {
            match op.action {
                Action::Create if any_needs => {
                    created.insert((op.kind, op.id.as_str()), i);
                }
                Action::Delete if any_leaves => {
                    deleted.insert((op.kind, op.id.as_str()), i);
                }
                _ => {}
            }
            for f in p.frees.iter().filter(|f| taken.contains(f)) {
                freed.entry(f).or_default().push(i);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, p) in pending.iter().enumerate() {
            for (kind, id) in &p.needs {
                if let Some(&j) = created.get(&(*kind, id.as_str())) {
                    deps[i].push(j);
                }
            }
            for (kind, id) in &p.leaves {
                if let Some(&j) = deleted.get(&(*kind, id.as_str())) {
                    deps[j].push(i);
                }
            }
            deps[i].extend(p.after.iter().copied());
            for t in &p.takes {
                for &j in freed.get(t).into_iter().flatten() {
                    if j != i {
                        deps[i].push(j);
                    }
                }
            }
        }
        for d in &mut deps {
            d.sort_unstable();
            d.dedup();
        }
        deps
    }

    /// Breaks a wait cycle made by a swap of names (`a` → `b` while `b` → `a`): one
    /// of the renames first moves its entity to a temporary name, freeing its old one.
    /// Returns false when no op in `stuck` can be split so.
    fn split_swap(&mut self, stuck: &[usize]) -> bool {
        for &i in stuck {
            let (p, op) = (&self.pending[i], &self.ops[i]);
            if op.action != Action::Update {
                continue;
            }
            let kind = op.kind;
            let Changes::Listed(changes) = &op.changes else {
                continue;
            };
            let renamed = changes.iter().find(|c| {
                matches!(c.field.as_str(), "name" | "username" | "custom_id")
                    && c.old.is_string()
                    && c.new.is_string()
            });
            let Some(rename) = renamed else { continue };
            let field = rename.field.clone();
            let old = rename.old.as_str().unwrap_or_default().to_owned();
            let temporary = format!(
                "{old}-carl-swap-{}",
                &carl_model::deterministic_id(kind, &format!("{}:{old}", op.id))
                    .simple()
                    .to_string()[..8]
            );
            let old_value = (kind, format!("{field}={old}"));
            let first = Pending {
                frees: vec![old_value.clone()],
                takes: Vec::new(),
                needs: Vec::new(),
                leaves: Vec::new(),
                replaces: None,
                after: Vec::new(),
                source: p.source,
            };
            let first_op = Op {
                index: 0,
                action: Action::Update,
                kind,
                id: op.id.clone(),
                label: op.label.clone(),
                path: op.path.clone(),
                replace: Some(format!("temporary {field}, to free '{old}' for a swap")),
                replaces: None,
                changes: Changes::Listed(vec![Change {
                    field: field.clone(),
                    old: Value::String(old.clone()),
                    new: Value::String(temporary),
                    sensitive: false,
                }]),
                extra: Object::new(),
                depends_on: Vec::new(),
            };
            let first_at = self.pending.len();
            let second = &mut self.pending[i];
            second.frees.retain(|f| *f != old_value);
            second.after.push(first_at);
            self.pending.push(first);
            self.ops.push(first_op);
            return true;
        }
        false
    }

    /// Builds the graph and orders the ops: a topological order that, among ready ops,
    /// puts creates and updates (parents first) before deletes (children first).
    pub(crate) fn finish(mut self) -> Result<Plan, PlanError> {
        // Each round either orders every op or splits one swap; a plan has finitely
        // many renames, so this ends.
        let mut rounds = self.pending.len() + 1;
        loop {
            let deps = self.edges();
            match order(&self.ops, &deps) {
                Ok(order) => return Ok(self.into_plan(&deps, &order)),
                Err(stuck) => {
                    rounds -= 1;
                    if rounds == 0 || !self.split_swap(&stuck) {
                        let names: Vec<String> = stuck
                            .iter()
                            .map(|&i| format!("{} {}", self.ops[i].kind, self.ops[i].label))
                            .collect();
                        return Err(PlanError {
                            location: None,
                            message: format!(
                                "these changes wait on each other and carl cannot order them: {}; \
                                 make the change in two steps",
                                names.join(", ")
                            ),
                        });
                    }
                }
            }
        }
    }
}

/// Kahn's algorithm; `Err` holds the ops left in a cycle.
///
/// Among ready ops the most readable comes first: creates and updates (parents first)
/// before deletes (children first), then by label. Each op's place in that order is
/// computed once by one sort, and the heap holds those places: a heap of labels
/// compared at every step strays over the whole plan's memory.
fn order(ops: &[Op], deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = ops.len();
    let kinds = Kind::ALL.len();
    let rank = |op: &Op| -> (usize, usize) {
        let rank = Kind::ALL.iter().position(|k| *k == op.kind).unwrap_or(0);
        match op.action {
            Action::Delete => (1, kinds - rank),
            _ => (0, rank),
        }
    };
    let ranks: Vec<(usize, usize)> = ops.iter().map(rank).collect();
    let mut readable: Vec<usize> = (0..n).collect();
    readable
        .sort_unstable_by(|&a, &b| (ranks[a], &ops[a].label, a).cmp(&(ranks[b], &ops[b].label, b)));
    drop(ranks);
    // place[i]: op i's place in the readable order.
    let mut place = vec![0u32; n];
    for (p, &i) in readable.iter().enumerate() {
        place[i] = p as u32;
    }
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            dependents[j].push(i);
        }
    }
    let mut heap: BinaryHeap<Reverse<u32>> = (0..n)
        .filter(|&i| remaining[i] == 0)
        .map(|i| Reverse(place[i]))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(p)) = heap.pop() {
        let i = readable[p as usize];
        order.push(i);
        for &d in &dependents[i] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                heap.push(Reverse(place[d]));
            }
        }
    }
    if order.len() < n {
        return Err((0..n).filter(|i| remaining[*i] > 0).collect());
    }
    Ok(order)
}

impl Builder {
    fn into_plan(self, deps: &[Vec<usize>], order: &[usize]) -> Plan {
        let Builder { mut ops, pending } = self;
        let n = ops.len();
        let mut position = vec![0; n];
        for (pos, &i) in order.iter().enumerate() {
            position[i] = pos;
        }
        // A replacing create points at the delete of the entity it replaces.
        let mut delete_of: HashMap<(Kind, &str), usize> = HashMap::default();
        if pending.iter().any(|p| p.replaces.is_some()) {
            for (i, op) in ops.iter().enumerate() {
                if op.action == Action::Delete {
                    delete_of.insert((op.kind, op.id.as_str()), i);
                }
            }
        }
        let replaced: Vec<Option<usize>> = pending
            .iter()
            .zip(&ops)
            .map(|(p, op)| {
                let old = p.replaces.as_deref()?;
                delete_of.get(&(op.kind, old)).map(|&j| position[j])
            })
            .collect();
        drop(delete_of);
        let mut summary = Summary::default();
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = position[i];
            op.depends_on = deps[i].iter().map(|&j| position[j]).collect();
            op.depends_on.sort_unstable();
            op.replaces = replaced[i];
            match op.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        let mut sources: Vec<Option<usize>> = pending.into_iter().map(|p| p.source).collect();
        // Each op to its place, where it lies: swapping along the permutation's cycles
        // moves every op once and allocates nothing.
        for i in 0..n {
            while position[i] != i {
                let p = position[i];
                ops.swap(i, p);
                sources.swap(i, p);
                position.swap(i, p);
            }
        }
        Plan {
            summary,
            ops,
            names: Default::default(),
            sources,
        }
    }
}
