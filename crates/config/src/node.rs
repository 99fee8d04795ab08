//! A YAML tree in which every node keeps its line and column.
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML value with the location it came from.
pub type SNode = Spanned<Node>;

/// Parses YAML the way Kong's lyaml reads it: YAML 1.1 booleans (`off` is false) and
/// legacy octals (`0755` is 493). Duplicate keys are an error with their location.
pub fn parse(text: &str) -> Result<SNode, serde_saphyr::Error> {
    // Deserialising recurses once per level with large frames (tens of KB each in a
    // debug build): parse on a thread whose stack holds MAX_DEPTH levels whatever
    // thread calls (a test thread has 2 MiB). The stack is reserved, not committed.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("carl-yaml".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || parse_here(text))
            .map(|handle| handle.join())
    })
    // No thread available: parse here, still bounded by MAX_DEPTH.
    .unwrap_or_else(|_| Ok(parse_here(text)))
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn parse_here(text: &str) -> Result<SNode, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options(text.len()))
}

/// How many events aliases may replay in a file of `bytes`: four per byte of input,
/// no fewer than serde-saphyr's 1M and no more than the nodes a file may hold. A real
/// file's alias costs a line and replays tens of events (`<<: *defaults` on each of
/// 30,000 lean services is over 1M); a bomb's costs a few bytes and replays thousands.
/// So memory stays proportional to the input: ~130 bytes a replayed event (144 MB for
/// a 277 KB bomb refused at 1.1M), about 650 MB at the cap, which only files of
/// 1.25 MB and more reach. A file above four a byte (a 200-event anchor on every
/// 45-byte entry) is refused, and the message says by how much it may replay.
pub(crate) fn replay_budget(bytes: usize) -> usize {
    bytes.saturating_mul(4).clamp(1_000_000, MAX_NODES)
}

/// The nodes one file may hold (aliases expanded): 70k entities is ~1M YAML nodes.
const MAX_NODES: usize = 5_000_000;

/// The limits that bound memory and time against alias bombs and runaway input, and
/// nothing else: a real file may use an anchor on every one of 20,000 services.
fn options(bytes: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = 12_000_000;
    // Kong's deepest entity (an upstream's healthchecks) nests about 12 levels in a file.
    budget.max_depth = MAX_DEPTH;
    // What an anchor records is copied in memory (about 250 bytes an event) before any
    // limit on the expansion is reached: 1M by default let an alias bomb hold 277 MB
    // for 0.6 s before it was refused. A real file's anchors (shared plugin configs,
    // defaults merged with `<<:`) record a few hundred events.
    budget.max_recorded_anchor_events = 100_000;
    // Reusing anchors is what they are for. The defaults (at most 50,000 aliases and
    // 10,000 merge keys, and no more than 10 aliases per anchor once there are 100)
    // refused a gateway with `<<: *defaults` on each of its services. What the aliases
    // expand to is bounded by `replay_budget`: at 5M for any file, a 270 KB one
    // replaying one large anchor held 508 MB for 4.4 s before the node budget refused
    // it; serde-saphyr's fixed 1M refused a gateway with a 35-event anchor on each of
    // 30,000 services.
    budget.max_aliases = MAX_NODES;
    budget.max_merge_keys = MAX_NODES;
    budget.enforce_alias_anchor_ratio = false;
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: Some(budget),
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: replay_budget(bytes),
        },
    }
}

/// The deepest nesting carl reads; deeper input is refused with its place (the
/// message in `load::yaml_message` names the number).
pub const MAX_DEPTH: usize = 48;

const PARSER_STACK: usize = 256 * 1024 * 1024;

impl Node {
    /// The noun for this node's type in "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::UInt(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<SNode>),
    Map(Vec<(SNode, SNode)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(e) = seq.next_element::<SNode>()? {
            out.push(e);
        }
        // The tree of a large file is the largest thing carl holds while loading; a
        // list grown by doubling is up to half empty.
        out.shrink_to_fit();
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<SNode>()? {
            let v = map.next_value::<SNode>()?;
            out.push((k, v));
        }
        out.shrink_to_fit();
        Ok(Node::Map(out))
    }
}
