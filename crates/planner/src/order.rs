//! The plan's dependency graph (DESIGN.md decision 6) and a stable order of its ops.
//!
//! Edges: a child's write waits for its parent's create; a parent's delete waits for
//! every op that moves or deletes its live children; a write that takes a unique name
//! waits for the op that frees it (a delete, or a rename away).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use carl_config::DesiredEntity;
use carl_model::{Kind, Object, Schema};
use serde_json::Value;

use crate::{Action, Change, Op, Plan, PlanError, Summary};

/// An op before ordering, with what the graph needs to know about it.
struct Pending {
    op: Op,
    /// Unique values this op gives up: (kind, name).
    frees: Option<(Kind, String)>,
    /// Unique values this op claims.
    takes: Option<(Kind, String)>,
    /// Ids of entities (by kind) that must exist before this op runs.
    needs: Vec<(Kind, String)>,
    /// The live parent this op detaches from (a delete, or an update changing the
    /// foreign key): the parent's delete must wait for it.
    leaves: Vec<(Kind, String)>,
}

/// (phase: writes before deletes, kind rank, label): the readable order among ready ops.
type SortKey = (usize, usize, String);

#[derive(Default)]
pub(crate) struct Builder {
    pending: Vec<Pending>,
}

fn name_of(kind: Kind, o: &Object) -> Option<String> {
    o.get(kind.endpoint_key())
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn foreign_ids(kind: Kind, o: &Object) -> Vec<(Kind, String)> {
    kind.foreign_keys()
        .iter()
        .filter_map(|(field, target)| {
            Some((*target, carl_model::foreign_id(o.get(*field)?)?.to_owned()))
        })
        .collect()
}

impl Builder {
    pub(crate) fn create(
        &mut self,
        kind: Kind,
        id: String,
        source: &DesiredEntity,
        fields: &Object,
        schema: &Schema,
    ) {
        // Send what the file says (Kong fills its own defaults), in schema order.
        let written =
            |name: &str| source.fields.contains_key(name) || source.references.contains_key(name);
        let mut body = Object::new();
        let mut changes = Vec::new();
        for field in &schema.fields {
            if field.name == "id" || !written(&field.name) {
                continue;
            }
            let value = fields.get(&field.name).cloned().unwrap_or(Value::Null);
            changes.push(Change {
                field: field.name.clone(),
                old: Value::Null,
                new: value.clone(),
            });
            body.insert(field.name.clone(), value);
        }
        self.pending.push(Pending {
            takes: name_of(kind, fields).map(|n| (kind, n)),
            frees: None,
            needs: foreign_ids(kind, fields),
            leaves: Vec::new(),
            op: Op {
                index: 0,
                action: Action::Create,
                kind,
                id,
                label: crate::identity::label(kind, fields),
                changes,
                body,
                depends_on: Vec::new(),
            },
        });
    }

    pub(crate) fn update(&mut self, kind: Kind, id: String, label: String, changes: Vec<Change>) {
        let mut body = Object::new();
        let mut takes = None;
        let mut frees = None;
        let mut needs = Vec::new();
        let mut leaves = Vec::new();
        for c in &changes {
            body.insert(c.field.clone(), c.new.clone());
            if c.field == kind.endpoint_key() {
                takes = c.new.as_str().map(|n| (kind, n.to_owned()));
                frees = c.old.as_str().map(|n| (kind, n.to_owned()));
            }
            if let Some((_, target)) = kind.foreign_keys().iter().find(|(f, _)| *f == c.field) {
                if let Some(new) = carl_model::foreign_id(&c.new) {
                    needs.push((*target, new.to_owned()));
                }
                if let Some(old) = carl_model::foreign_id(&c.old) {
                    leaves.push((*target, old.to_owned()));
                }
            }
        }
        self.pending.push(Pending {
            op: Op {
                index: 0,
                action: Action::Update,
                kind,
                id,
                label,
                changes,
                body,
                depends_on: Vec::new(),
            },
            frees,
            takes,
            needs,
            leaves,
        });
    }

    pub(crate) fn delete(&mut self, kind: Kind, id: String, label: String, live: &Object) {
        self.pending.push(Pending {
            frees: name_of(kind, live).map(|n| (kind, n)),
            takes: None,
            needs: Vec::new(),
            leaves: foreign_ids(kind, live),
            op: Op {
                index: 0,
                action: Action::Delete,
                kind,
                id,
                label,
                changes: Vec::new(),
                body: Object::new(),
                depends_on: Vec::new(),
            },
        });
    }

    /// Builds the graph and orders the ops: a topological order that, among ready ops,
    /// puts creates and updates (parents first) before deletes (children first).
    pub(crate) fn finish(self) -> Result<Plan, PlanError> {
        let pending = self.pending;
        let n = pending.len();
        let mut created: HashMap<(Kind, &str), usize> = HashMap::new();
        let mut deleted: HashMap<(Kind, &str), usize> = HashMap::new();
        let mut freed: HashMap<&(Kind, String), usize> = HashMap::new();
        for (i, p) in pending.iter().enumerate() {
            match p.op.action {
                Action::Create => {
                    created.insert((p.op.kind, p.op.id.as_str()), i);
                }
                Action::Delete => {
                    deleted.insert((p.op.kind, p.op.id.as_str()), i);
                }
                Action::Update => {}
            }
            if let Some(f) = &p.frees {
                freed.insert(f, i);
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
            if let Some(t) = &p.takes
                && let Some(&j) = freed.get(t)
                && j != i
            {
                deps[i].push(j);
            }
        }
        for d in &mut deps {
            d.sort_unstable();
            d.dedup();
        }

        // Kahn's algorithm; the heap picks the most readable next op among ready ones.
        let kinds = Kind::ALL.len();
        let sort_key = |p: &Pending| -> SortKey {
            let rank = Kind::ALL.iter().position(|k| *k == p.op.kind).unwrap_or(0);
            match p.op.action {
                Action::Delete => (1, kinds - rank, p.op.label.clone()),
                _ => (0, rank, p.op.label.clone()),
            }
        };
        let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                dependents[j].push(i);
            }
        }
        let mut heap: BinaryHeap<Reverse<(SortKey, usize)>> = (0..n)
            .filter(|&i| remaining[i] == 0)
            .map(|i| Reverse((sort_key(&pending[i]), i)))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse((_, i))) = heap.pop() {
            order.push(i);
            for &d in &dependents[i] {
                remaining[d] -= 1;
                if remaining[d] == 0 {
                    heap.push(Reverse((sort_key(&pending[d]), d)));
                }
            }
        }
        if order.len() < n {
            let stuck: Vec<String> = (0..n)
                .filter(|i| remaining[*i] > 0)
                .map(|i| format!("{} {}", pending[i].op.kind, pending[i].op.label))
                .collect();
            return Err(PlanError {
                location: None,
                message: format!(
                    "these changes wait on each other (names swapped between entities?): {}; \
                     rename in two steps",
                    stuck.join(", ")
                ),
            });
        }
        let mut position = vec![0; n];
        for (pos, &i) in order.iter().enumerate() {
            position[i] = pos;
        }
        let mut slots: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
        let mut summary = Summary::default();
        let mut ops = Vec::with_capacity(n);
        for (pos, &i) in order.iter().enumerate() {
            let Some(p) = slots[i].take() else { continue };
            let mut op = p.op;
            op.index = pos;
            op.depends_on = deps[i].iter().map(|&j| position[j]).collect();
            op.depends_on.sort_unstable();
            match op.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
            }
            ops.push(op);
        }
        Ok(Plan {
            summary,
            ops,
            names: Default::default(),
        })
    }
}
