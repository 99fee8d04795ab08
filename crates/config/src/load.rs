//! From a YAML tree to desired entities: the declarative format's structure, nesting,
//! interpolation and schema checks, each error at its line and column.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use carl_model::{Field, FieldType, Kind, Object, Schema};
use serde_json::{Number, Value};

use crate::node::{Node, SNode};
use crate::{
    DesiredEntity, DesiredState, Diagnostic, Env, FieldMap, FieldPos, Location, Reference,
};

/// The `_format_version` carl reads.
const FORMAT_VERSION: &str = "3.0";

/// Keys of the format itself, allowed at the top level.
const META_KEYS: &[&str] = &["_format_version", "_transform", "_comment", "_ignore"];

struct Loader<'a> {
    file: Arc<str>,
    text: &'a str,
    env: Env<'a>,
    diagnostics: &'a mut Vec<Diagnostic>,
    /// `_info.defaults`: fields given to every entity of a kind that does not set them.
    defaults: BTreeMap<Kind, Vec<(String, Value, Location)>>,
    /// Byte ranges of secret values (passwords, keys), masked in error snippets.
    secrets: Vec<std::ops::Range<usize>>,
    /// Entities (by index in the state) to validate once the file is walked, with
    /// the fields already reported.
    pending: Vec<(usize, Failed)>,
}

/// Loads one file into `state`. Returns the byte ranges of the secret values in it, or
/// `None` when the file is not YAML at all (then nothing is known about where they are).
pub(crate) fn load_document(
    file: Arc<str>,
    text: &str,
    env: Env<'_>,
    state: &mut DesiredState,
    diagnostics: &mut Vec<Diagnostic>,
    pending: &mut Vec<(usize, Failed)>,
) -> Option<Vec<std::ops::Range<usize>>> {
    let mut root = match crate::node::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let location = e.location().filter(|l| l.line() > 0).map(|l| Location {
                file: file.clone(),
                line: l.line(),
                column: l.column(),
                offset: 0,
            });
            diagnostics.push(Diagnostic {
                location,
                file,
                message: yaml_message(&e, text.len()),
            });
            return None;
        }
    };
    let mut loader = Loader {
        file,
        text,
        env,
        diagnostics,
        defaults: BTreeMap::new(),
        secrets: Vec::new(),
        pending: Vec::new(),
    };
    loader.document(&mut root, state);
    // Freeing a large tree takes a while; nothing waits for it.
    std::thread::spawn(move || drop(root));
    pending.append(&mut loader.pending);
    Some(loader.secrets)
}

/// serde-saphyr's message without its own location suffix and configuration hints:
/// carl prints `file:line:col` itself. `bytes`: the file's size, which sets how much
/// its aliases may replay.
fn yaml_message(e: &serde_saphyr::Error, bytes: usize) -> String {
    let mut msg = e.without_snippet().to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    if let Some(i) = msg.find(", set DuplicateKeyPolicy") {
        msg.truncate(i);
    }
    const ALIAS_BOMB: &str =
        "its aliases (*ref) expand to more data than carl reads (an alias bomb?)";
    if msg.starts_with("alias replay") {
        let budget = crate::node::replay_budget(bytes);
        return format!(
            "the file exceeds carl's limits for YAML input: its aliases (*ref) expand to more \
             than the {budget} YAML events carl replays for a file of {bytes} bytes (four a \
             byte, at least 1000000; an alias bomb?)"
        );
    }
    if let Some(breach) = msg.split("budget breached: ").nth(1) {
        let what = match breach.split([' ', '{']).next().unwrap_or_default() {
            "Aliases"
            | "Anchors"
            | "RecordedAnchorEvents"
            | "RecordedAnchorBytes"
            | "MergeKeys"
            | "AliasAnchorRatio" => ALIAS_BOMB.into(),
            "Depth" => {
                "it nests deeper than carl reads (48 levels; a Kong file needs about 12)".into()
            }
            "Documents" => "it holds more YAML documents (---) than carl reads".into(),
            "Nodes" | "Events" | "ScalarBytes" | "InputBytes" => {
                "it holds more YAML nodes than carl reads in one file: split it into several files"
                    .into()
            }
            other => format!("its {other} exceed what carl reads"),
        };
        return format!("the file exceeds carl's limits for YAML input: {what}");
    }
    msg.strip_prefix("error: ")
        .map(str::to_owned)
        .unwrap_or(msg)
}

impl Loader<'_> {
    fn loc(&self, node: &SNode) -> Location {
        Location {
            file: self.file.clone(),
            line: node.referenced.line(),
            column: node.referenced.column(),
            offset: 0,
        }
    }

    fn error(&mut self, node: &SNode, message: impl Into<String>) {
        let location = Some(self.loc(node));
        self.diagnostics.push(Diagnostic {
            location,
            file: self.file.clone(),
            message: message.into(),
        });
    }

    fn document(&mut self, root: &mut SNode, state: &mut DesiredState) {
        let Node::Map(entries) = &mut root.value else {
            if root.value == Node::Null {
                self.diagnostics.push(Diagnostic {
                    location: None,
                    file: self.file.clone(),
                    message:
                        "the file is empty: expected a mapping with `_format_version: \"3.0\"`"
                            .into(),
                });
            } else {
                let found = root.value.type_name();
                self.error(
                    root,
                    format!("expected a mapping at the top of the file, found {found}"),
                );
            }
            return;
        };
        let mut version_seen = false;
        let mut legacy = false;
        let first = state.entities.len();
        // Taken out of the tree so that each entity's part of it is freed once loaded:
        // the tree of a large file and its entities are never held whole at once.
        let entries = std::mem::take(entries);
        // `_info` first: its defaults apply to entities wherever they are in the file.
        for (key, value) in &entries {
            if matches!(&key.value, Node::Str(k) if k == "_info") {
                self.info(value, state);
            }
        }
        for (key, value) in entries {
            let Some(name) = self.key(&key) else { continue };
            match name {
                "_format_version" => {
                    version_seen = true;
                    legacy = matches!(&value.value, Node::Str(v) if v == "1.1" || v == "2.1");
                    self.format_version(&value);
                }
                "_info" => {}
                // `_transform: false`: basic-auth passwords are written as Kong stores
                // them (hashed), as in a dump; the planner compares them as they are.
                "_transform" => match &value.value {
                    Node::Bool(true) => {}
                    Node::Bool(false) => {
                        state.untransformed_files.insert(self.file.clone());
                    }
                    _ => self.error(&value, "`_transform`: expected true or false"),
                },
                // decK dumps carry `_workspace: default`; carl manages that workspace.
                "_workspace" => {
                    if !matches!(&value.value, Node::Str(w) if w == "default") {
                        self.error(&value, "`_workspace`: carl manages Kong's default workspace only; expected `default`");
                    }
                }
                other if META_KEYS.contains(&other) => {}
                other if Kind::from_dao(other).is_some() => {
                    if let Some(kind) = Kind::from_dao(other) {
                        match value.value {
                            Node::Seq(items) => {
                                for item in items {
                                    self.item(kind, &item, None, state);
                                }
                            }
                            _ => self.collection(kind, &value, None, state),
                        }
                    }
                }
                other => {
                    let mut known: Vec<&str> = vec!["_info"];
                    known.extend(META_KEYS);
                    known.extend(Kind::ALL.iter().map(|k| k.dao()));
                    let hint = suggestion(other, known.iter().copied());
                    self.error(&key, format!("unknown top-level key `{other}`{hint}"));
                }
            }
        }
        if !version_seen {
            self.error(
                root,
                "missing `_format_version`: add `_format_version: \"3.0\"` at the top of the file",
            );
        }
        if legacy {
            self.legacy_regex_paths(&state.entities[first..]);
        }
    }

    /// In a Kong 2.x file, the route paths Kong 2 would have treated as regexes, which
    /// Kong 3 matches literally unless prefixed with `~` (what `deck file convert` does).
    fn legacy_regex_paths(&mut self, entities: &[DesiredEntity]) {
        for route in entities.iter().filter(|e| e.kind == Kind::Route) {
            let paths = route.fields.get("paths").and_then(Value::as_array);
            for path in paths.into_iter().flatten().filter_map(Value::as_str) {
                if !path.starts_with('~')
                    && path.contains([
                        '[', ']', '(', ')', '{', '}', '*', '+', '?', '|', '^', '$', '\\',
                    ])
                {
                    let location = route.location_of("paths");
                    self.error_at(
                        location,
                        format!("route.paths: '{path}' is a regex in Kong 2.x; in format 3.0 write '~{path}'"),
                    );
                }
            }
        }
    }

    fn format_version(&mut self, value: &SNode) {
        match &value.value {
            Node::Str(v) if v == FORMAT_VERSION => {}
            Node::Str(v) if v == "1.1" || v == "2.1" => self.error(
                value,
                format!(
                    "_format_version \"{v}\" is a Kong 2.x format: change it to \"3.0\" and prefix regex \
                     route paths with `~` (Kong 3.x treats a path as a regex only when it starts with `~`)"
                ),
            ),
            Node::Str(v) => self.error(value, format!("unsupported _format_version \"{v}\": expected \"3.0\"")),
            Node::Float(_) => self.error(
                value,
                "_format_version must be a string: write \"3.0\" in quotes (unquoted 3.0 is a number)",
            ),
            other => {
                let found = other.type_name();
                self.error(value, format!("_format_version: expected the string \"3.0\", found {found}"))
            }
        }
    }

    fn info(&mut self, value: &SNode, state: &mut DesiredState) {
        let Node::Map(entries) = &value.value else {
            let found = value.value.type_name();
            self.error(value, format!("_info: expected a mapping, found {found}"));
            return;
        };
        for (key, v) in entries {
            match self.key(key) {
                Some("select_tags") => self.select_tags(v, state),
                Some("defaults") => self.defaults(v),
                Some(other) => {
                    let hint = suggestion(other, ["select_tags", "defaults"].into_iter());
                    self.error(key, format!("unknown key `_info.{other}`{hint}"));
                }
                None => {}
            }
        }
    }

    /// `_info.select_tags`: the file manages only entities with all these tags (DESIGN.md
    /// decision 7). Every file of a run must name the same ones.
    fn select_tags(&mut self, value: &SNode, state: &mut DesiredState) {
        let tags_field = Kind::Service.schema().field("tags").cloned();
        let Some(v) = self.value(value, tags_field.as_ref(), Path::Text("_info.select_tags"))
        else {
            return;
        };
        let mut tags: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        tags.sort();
        tags.dedup();
        if tags.is_empty() {
            return self.error(value, "_info.select_tags: expected at least one tag");
        }
        if tags.len() > 5 {
            return self.error(
                value,
                "_info.select_tags: at most 5 tags (Kong filters by at most 5)",
            );
        }
        for t in &tags {
            if let Err(e) = carl_model::validate::validate_value(
                tags_field
                    .as_ref()
                    .and_then(|f| f.elements.as_deref())
                    .unwrap_or(
                        &carl_model::Field::parse_attrs("", &serde_json::json!({"type": "string"}))
                            .expect("a string field"),
                    ),
                "services",
                "tags[]",
                &Value::String(t.clone()),
                &carl_model::kong_rules::KongCustom,
            ) {
                self.error(
                    value,
                    format!("_info.select_tags: {}", e.as_str().unwrap_or("invalid tag")),
                );
            }
        }
        let here = self.loc(value);
        match &state.select_tags {
            Some((existing, at)) if *existing != tags => {
                let message = format!(
                    "_info.select_tags {tags:?} differ from {existing:?} at {at}: every file of a run must select the same tags"
                );
                self.error_at(here, message);
            }
            Some(_) => {}
            None => state.select_tags = Some((tags, here)),
        }
    }

    /// `_info.defaults` (decK): `{service: {...}, route: {...}, ...}`, fields each entity
    /// of that kind gets unless it sets them.
    fn defaults(&mut self, value: &SNode) {
        let Node::Map(entries) = &value.value else {
            let found = value.value.type_name();
            return self.error(
                value,
                format!("_info.defaults: expected a mapping, found {found}"),
            );
        };
        for (key, fields) in entries {
            let Some(name) = self.key(key) else { continue };
            let Some(kind) = Kind::ALL
                .iter()
                .copied()
                .find(|k| k.dao().trim_end_matches('s') == name || k.dao() == name)
            else {
                let hint = suggestion(
                    name,
                    [
                        "service", "route", "upstream", "target", "consumer", "plugin",
                    ]
                    .into_iter(),
                );
                self.error(
                    key,
                    format!("_info.defaults: unknown entity `{name}`{hint}"),
                );
                continue;
            };
            let Node::Map(pairs) = &fields.value else {
                self.error(fields, format!("_info.defaults.{name}: expected a mapping"));
                continue;
            };
            for (fk, fv) in pairs {
                let Some(field_name) = self.key(fk) else {
                    continue;
                };
                let Some(field) = kind.schema().field(field_name).cloned() else {
                    let candidates: Vec<&str> = kind
                        .schema()
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect();
                    let hint = suggestion(field_name, candidates.into_iter());
                    self.error(
                        fk,
                        format!("_info.defaults.{name}: unknown field `{field_name}`{hint}"),
                    );
                    continue;
                };
                if let Some(v) = self.value(
                    fv,
                    Some(&field),
                    Path::Text(&format!("_info.defaults.{name}.{field_name}")),
                ) {
                    let loc = self.loc(fv);
                    self.defaults
                        .entry(kind)
                        .or_default()
                        .push((field_name.to_owned(), v, loc));
                }
            }
        }
    }

    /// A mapping key as a string; other key types are errors.
    fn key<'n>(&mut self, key: &'n SNode) -> Option<&'n str> {
        match &key.value {
            Node::Str(s) => Some(s),
            other => {
                let found = other.type_name();
                self.error(key, format!("expected a field name, found {found}"));
                None
            }
        }
    }

    fn list<'n>(&mut self, value: &'n SNode, what: &str) -> &'n [SNode] {
        match &value.value {
            Node::Seq(items) => items,
            Node::Null => &[],
            other => {
                let found = other.type_name();
                self.error(value, format!("`{what}`: expected a list, found {found}"));
                &[]
            }
        }
    }

    /// A list of `kind` entities, nested under `parent` when given.
    fn collection(
        &mut self,
        kind: Kind,
        value: &SNode,
        parent: Option<(&'static str, Reference)>,
        state: &mut DesiredState,
    ) {
        for item in self.list(value, kind.dao()) {
            self.item(kind, item, parent.clone(), state);
        }
    }

    /// One entity and, recursively, the children nested in it (`routes` in a service,
    /// credentials in a consumer, `targets` in an upstream...).
    fn item(
        &mut self,
        kind: Kind,
        node: &SNode,
        parent: Option<(&'static str, Reference)>,
        state: &mut DesiredState,
    ) {
        let children: Vec<(Kind, &'static str)> = Kind::ALL
            .iter()
            .filter_map(|child| {
                child
                    .foreign_keys()
                    .iter()
                    .find(|(_, t)| *t == kind)
                    .map(|(f, _)| (*child, *f))
            })
            .collect();
        let nested_names: Vec<&'static str> = children.iter().map(|(c, _)| c.dao()).collect();
        let Some(parsed) = self.entity(kind, node, &nested_names) else {
            return;
        };
        let mut entity = parsed.entity;
        for (field, value, loc) in self.defaults.get(&kind).into_iter().flatten() {
            // A service given a `url` has its protocol, host, port and path from it.
            let from_url = kind == Kind::Service
                && entity.fields.contains_key("url")
                && ["protocol", "host", "port", "path"].contains(&field.as_str());
            let set = entity.fields.contains_key(field.as_str());
            if !set && !from_url {
                entity.fields.insert(field.as_str().into(), value.clone());
                entity
                    .field_locations
                    .insert(field.as_str().into(), FieldPos::from(loc));
            }
        }
        let mut failed = parsed.failed;
        if kind == Kind::Service && !self.expand_url(node, &mut entity) {
            // A broken url is the error; that host and protocol are missing follows.
            failed.extend(["host", "protocol", "port", "path"].map(str::to_owned));
        }
        if let Some((field, reference)) = parent {
            entity.references.insert(field.into(), reference);
        }
        let own_ref = match (
            entity.fields.get("id").and_then(Value::as_str),
            kind.lookup_key()
                .and_then(|k| entity.fields.get(k))
                .and_then(Value::as_str),
        ) {
            (Some(id), _) => Reference::Id(id.to_owned()),
            (None, Some(key)) => Reference::Name(key.to_owned()),
            (None, None) => Reference::Parent(state.entities.len()),
        };
        if kind == Kind::Service && matches!(own_ref, Reference::Parent(_)) {
            self.error(
                node,
                "service: missing `name` (or `id`): carl matches services to the gateway by name",
            );
        }
        self.pending.push((state.entities.len(), failed));
        state.entities.push(entity);
        for (key, value) in parsed.nested {
            if let Some((child, field)) = children.iter().find(|(c, _)| c.dao() == key) {
                self.collection(*child, value, Some((*field, own_ref.clone())), state);
            }
        }
    }

    /// The service `url` shorthand, expanded as Kong expands it.
    /// False when the url was there and wrong (reported).
    fn expand_url(&mut self, node: &SNode, entity: &mut DesiredEntity) -> bool {
        let Some(url) = entity.fields.remove("url") else {
            return true;
        };
        let url_loc = match entity.field_locations.get("url") {
            Some(_) => entity.location_of("url"),
            None => self.loc(node),
        };
        match url.as_str().map(carl_model::service_url::expand) {
            Some(Ok(parts)) => {
                for (field, value) in parts {
                    entity.fields.insert(field.into(), value);
                    entity
                        .field_locations
                        .insert(field.into(), FieldPos::from(&url_loc));
                }
            }
            Some(Err(message)) => {
                self.error_at(url_loc, format!("service.url: {message}"));
                return false;
            }
            None if url.is_null() => {}
            None => {
                self.error_at(url_loc, "service.url: expected a string");
                return false;
            }
        }
        true
    }

    fn error_at(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            location: Some(location),
            file: self.file.clone(),
            message: message.into(),
        });
    }

    /// Reads one entity mapping against its kind's schema. Keys in `nested` are child
    /// collections, returned for the caller to load.
    fn entity<'n>(
        &mut self,
        kind: Kind,
        node: &'n SNode,
        nested: &[&'static str],
    ) -> Option<Parsed<'n>> {
        let Node::Map(entries) = &node.value else {
            let found = node.value.type_name();
            self.error(node, format!("{kind}: expected a mapping, found {found}"));
            return None;
        };
        let schema: &Schema = kind.schema();
        let mut entity = DesiredEntity {
            kind,
            fields: FieldMap::new(),
            references: FieldMap::new(),
            location: self.loc(node),
            field_locations: FieldMap::new(),
        };
        let mut children = Vec::new();
        let mut failed = Failed::new();
        // A plugin's config is described by that plugin's schema, when carl knows it.
        let plugin_config = (kind == Kind::Plugin)
            .then(|| {
                entries
                    .iter()
                    .find_map(|(k, v)| match (&k.value, &v.value) {
                        (Node::Str(k), Node::Str(name)) if k == "name" => {
                            carl_model::schema::plugin(name).and_then(|s| s.field("config"))
                        }
                        _ => None,
                    })
            })
            .flatten();
        for (key, value) in entries {
            let Some(name) = self.key(key) else { continue };
            if name == "_comment" || name == "_ignore" {
                continue;
            }
            if let Some(child) = nested.iter().find(|n| **n == name) {
                children.push((*child, value));
                continue;
            }
            entity
                .field_locations
                .insert(name.into(), FieldPos::from(&self.loc(value)));
            let field = schema.field(name);
            let described = match name {
                "config" if plugin_config.is_some() => plugin_config,
                _ => field,
            };
            let secret = kind.secret_fields().contains(&name);
            self.mark_secrets(name, described, value, secret);
            match field {
                Some(f) if f.ty == FieldType::Foreign => {
                    if let Some(r) = self.reference(kind, name, value) {
                        entity.references.insert(name.into(), r);
                    }
                }
                Some(f) if f.auto && matches!(name, "created_at" | "updated_at") => {
                    // Kong's to set; accepted and ignored as decK dumps carry them. Other
                    // `auto` fields (a key-auth `key`) are generated only when absent.
                }
                Some(f) => match self.value(value, Some(f), Path::Field(kind, name)) {
                    Some(v) => {
                        entity.fields.insert(name.into(), v);
                    }
                    None => {
                        failed.insert(name.to_owned());
                    }
                },
                None if kind == Kind::Service && name == "url" => {
                    if let Some(v) = self.value(value, None, Path::Text("service.url")) {
                        entity.fields.insert(name.into(), v);
                    }
                }
                None => {
                    let mut candidates: Vec<&str> =
                        schema.fields.iter().map(|f| f.name.as_str()).collect();
                    candidates.extend(nested);
                    if kind == Kind::Service {
                        candidates.push("url");
                    }
                    let hint = suggestion(name, candidates.into_iter());
                    self.error(key, format!("{kind}: unknown field `{name}`{hint}"));
                }
            }
        }
        Some(Parsed {
            entity,
            nested: children,
            failed,
        })
    }

    /// Records where secret values are (fields Kong encrypts, credential secrets,
    /// secret-looking names in configs no schema describes), so that no error snippet
    /// ever shows them.
    fn mark_secrets(&mut self, name: &str, field: Option<&Field>, node: &SNode, secret: bool) {
        let secret =
            secret || field.is_some_and(Field::is_encrypted) || carl_model::is_secret_name(name);
        match &node.value {
            Node::Map(entries) => {
                for (k, v) in entries {
                    let Node::Str(key) = &k.value else { continue };
                    let sub = field.and_then(|f| f.fields.iter().find(|sf| sf.name == *key));
                    self.mark_secrets(key, sub, v, secret);
                }
            }
            Node::Seq(items) => {
                let element = field.and_then(|f| f.elements.as_deref());
                for item in items {
                    self.mark_secrets("", element, item, secret);
                }
            }
            // A bare `${VAR}` names where the secret comes from; it is not the secret.
            Node::Str(s) if is_bare_variable(s) => {}
            _ if secret => {
                let span = node.referenced.span();
                if let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) {
                    self.secrets.push(start as usize..(start + len) as usize);
                }
            }
            _ => {}
        }
    }

    fn reference(&mut self, kind: Kind, field: &str, value: &SNode) -> Option<Reference> {
        let by_str = |s: &str| {
            if carl_model::is_uuid(s) {
                Reference::Id(s.to_owned())
            } else {
                Reference::Name(s.to_owned())
            }
        };
        match &value.value {
            Node::Null => None,
            Node::Str(_) => {
                let s = self.value(value, None, Path::Field(kind, field))?;
                Some(by_str(s.as_str().unwrap_or_default()))
            }
            Node::Map(entries) => {
                let mut found = None;
                let before = self.diagnostics.len();
                for (k, v) in entries {
                    let key = self.key(k)?;
                    let text =
                        match self.value(v, None, Path::Key(&Path::Field(kind, field), key))? {
                            Value::String(s) => s,
                            _ => {
                                self.error(v, format!("{kind}.{field}.{key}: expected a string"));
                                return None;
                            }
                        };
                    match key {
                        "id" if carl_model::is_uuid(&text) => found = Some(Reference::Id(text)),
                        "id" => self.error(v, format!("{kind}.{field}.id: expected a UUID")),
                        "name" => found = Some(Reference::Name(text)),
                        other => self.error(
                            k,
                            format!(
                                "{kind}.{field}: unknown field `{other}`: expected `id` or `name`"
                            ),
                        ),
                    }
                }
                if found.is_none() && self.diagnostics.len() == before {
                    self.error(value, format!("{kind}.{field}: expected `id` or `name`"));
                }
                found
            }
            other => {
                let found = other.type_name();
                self.error(
                    value,
                    format!("{kind}.{field}: expected a name, an id or {{id: ...}}, found {found}"),
                );
                None
            }
        }
    }

    /// Converts a YAML value to JSON, interpolating strings and checking it against
    /// `field` when the schema knows it. `None` when an error was reported.
    fn value(&mut self, node: &SNode, field: Option<&Field>, path: Path<'_>) -> Option<Value> {
        let value = match &node.value {
            Node::Null => return Some(Value::Null),
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::UInt(u) => Value::from(*u),
            Node::Float(f) => match Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    self.error(node, format!("{path}: expected a finite number"));
                    return None;
                }
            },
            Node::Str(s) => {
                let text = self.interpolated(node, s)?;
                // A whole-value `${VAR}` takes the field's type, so `port: ${PORT}` works.
                let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
                match field.map(|f| f.ty) {
                    Some(FieldType::Integer) if whole => match text.trim().parse::<i64>() {
                        Ok(i) => Value::from(i),
                        Err(_) => {
                            self.error(
                                node,
                                format!("{path}: expected an integer, found \"{text}\" (from {s})"),
                            );
                            return None;
                        }
                    },
                    Some(FieldType::Number) if whole => {
                        match text.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                            Some(n) => Value::Number(n),
                            None => {
                                self.error(
                                    node,
                                    format!(
                                        "{path}: expected a number, found \"{text}\" (from {s})"
                                    ),
                                );
                                return None;
                            }
                        }
                    }
                    Some(FieldType::Boolean) if whole => match text.trim() {
                        "true" | "yes" | "on" => Value::Bool(true),
                        "false" | "no" | "off" => Value::Bool(false),
                        _ => {
                            self.error(
                                node,
                                format!("{path}: expected a boolean, found \"{text}\" (from {s})"),
                            );
                            return None;
                        }
                    },
                    _ => Value::String(text),
                }
            }
            Node::Seq(items) => {
                let element = field.and_then(|f| f.elements.as_deref());
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.value(item, element, Path::Index(&path, i)) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Value::Array(out)
            }
            Node::Map(entries) => {
                let mut out = Object::new();
                let mut ok = true;
                for (k, v) in entries {
                    let Some(key) = self.key(k) else {
                        ok = false;
                        continue;
                    };
                    let sub = field.and_then(|f| match f.ty {
                        FieldType::Record => f.fields.iter().find(|sf| sf.name == key),
                        _ => None,
                    });
                    match self.value(v, sub, Path::Key(&path, key)) {
                        Some(v) => {
                            out.insert(key.to_owned(), v);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Value::Object(out)
            }
        };
        if let Some(field) = field
            && let Err(expected) = field.check_type(&value)
        {
            let found = node.value.type_name();
            self.error(node, format!("{path}: {expected}, found {found}"));
            return None;
        }
        Some(value)
    }

    /// Interpolates a string scalar; an unset variable is reported at its column.
    fn interpolated(&mut self, node: &SNode, s: &str) -> Option<String> {
        match crate::interpolate(s, self.env) {
            Ok(text) => Some(text),
            Err(e) => {
                let mut loc = self.loc(node);
                // Point at the `$` itself when the scalar is written on one line as-is.
                if let Some(start) = node.referenced.span().byte_offset() {
                    let start = start as usize;
                    let quoted = matches!(self.text.as_bytes().get(start), Some(b'"' | b'\''));
                    let body = start + usize::from(quoted);
                    if self.text.get(body..body + s.len()) == Some(s) {
                        loc.column += (usize::from(quoted) + s[..e.offset].chars().count()) as u64;
                    }
                }
                self.error_at(loc, e.message);
                None
            }
        }
    }
}

/// Validates `entity` as Kong would on insert (defaults, types, validators, entity
/// checks, Lua typedef rules), offline. Fields already reported are not again.
fn check_entity(entity: &DesiredEntity, failed: &Failed, out: &mut Checked) {
    let kind = entity.kind;
    let mut obj = entity.object();
    for (field, _) in kind.foreign_keys() {
        if entity.references.contains_key(*field) {
            // References resolve later; here only their presence matters.
            obj.insert((*field).to_owned(), serde_json::json!({ "id": uuid_nil() }));
        }
    }
    // A plugin carl's snapshot does not know (a custom one, or one newer than Kong
    // 3.9) is checked without its config; the gateway checks the rest (`--online`).
    let unknown_plugin = if let Some(name) = obj.get("name").and_then(Value::as_str)
        && kind == Kind::Plugin
        && carl_model::schema::plugin(name).is_none()
    {
        let what = if carl_model::schema::BUNDLED_PLUGINS.contains(&name) {
            "is bundled with Kong 3.9 but not in carl's offline schema snapshot".to_owned()
        } else {
            let hint = typo_suggestion(name, carl_model::schema::BUNDLED_PLUGINS.iter().copied());
            match hint.strip_prefix(", ") {
                Some(hint) => format!("is not bundled with Kong 3.9 ({hint})"),
                None => "is not bundled with Kong 3.9 (a custom plugin?)".to_owned(),
            }
        };
        let location = entity.location_of("name");
        out.warnings.push(Diagnostic {
            file: location.file.clone(),
            location: Some(location),
            message: format!(
                "plugin `{name}` {what}: its config is not checked offline; \
                 `carl validate --online` checks it with the gateway"
            ),
        });
        obj.remove("config");
        true
    } else {
        false
    };
    // The subschema is chosen on the entity with its defaults (routes without
    // `protocols` are http/https), then its own defaults apply (filling again
    // only adds what the subschema has and the base schema had not).
    carl_model::fill_defaults(kind, kind.schema(), &mut obj);
    let schema = if unknown_plugin {
        kind.schema()
    } else {
        match carl_model::schema::effective(kind, &obj) {
            Ok(s) => s,
            Err(v) => return report(entity, &v, failed, out),
        }
    };
    if !std::ptr::eq(schema, kind.schema()) {
        carl_model::fill_defaults(kind, schema, &mut obj);
    }
    if let Err(v) = carl_model::validate::validate(
        schema,
        kind.dao(),
        &obj,
        &carl_model::kong_rules::KongCustom,
    ) {
        report(entity, &v, failed, out);
    }
}

fn report(
    entity: &DesiredEntity,
    v: &carl_model::validate::Violations,
    failed: &Failed,
    out: &mut Checked,
) {
    let kind = entity.kind;
    for message in &v.entity {
        out.error_at(entity.location.clone(), format!("{kind}: {message}"));
    }
    for (field, err) in &v.fields {
        if failed.contains(field) || entity.references.contains_key(field.as_str()) {
            continue;
        }
        let location = entity.location_of(field);
        for (path, message) in flatten(field, err) {
            out.error_at(location.clone(), format!("{kind}.{path}: {message}"));
        }
    }
}

/// Fields already reported for an entity, not to be reported again by validation.
pub(crate) type Failed = std::collections::HashSet<String>;

/// What validating entities found.
#[derive(Default)]
struct Checked {
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Checked {
    fn error_at(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: location.file.clone(),
            location: Some(location),
            message: message.into(),
        });
    }
}

/// The checks that need every file loaded: each entity validated, duplicates and
/// references, all at once on the cores there are.
pub(crate) fn check_state(
    state: &mut DesiredState,
    pending: &[(usize, Failed)],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let shared: &DesiredState = state;
    let (mut checked, mut across) = std::thread::scope(|scope| {
        let across = scope.spawn(|| {
            let mut found = Vec::new();
            check_duplicates(shared, &mut found);
            check_references(shared, &mut found);
            found
        });
        let mut checked = Checked::default();
        check_all(shared, pending, &mut checked);
        let across = across
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (checked, across)
    });
    diagnostics.append(&mut checked.diagnostics);
    diagnostics.append(&mut across);
    state.warnings.append(&mut checked.warnings);
}

/// Validates `pending` entities of `state` on all cores: validating is most of the
/// cost of loading a large file, and entities are independent.
fn check_all(state: &DesiredState, pending: &[(usize, Failed)], out: &mut Checked) {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    if threads < 2 || pending.len() < 256 {
        for (i, failed) in pending {
            check_entity(&state.entities[*i], failed, out);
        }
        return;
    }
    let chunk = pending.len().div_ceil(threads);
    let results: Vec<Checked> = std::thread::scope(|scope| {
        let handles: Vec<_> = pending
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut found = Checked::default();
                    for (i, failed) in part {
                        check_entity(&state.entities[*i], failed, &mut found);
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for mut r in results {
        out.diagnostics.append(&mut r.diagnostics);
        out.warnings.append(&mut r.warnings);
    }
}

/// Where a value is in an entity, for messages (`route.paths[1]`); built only when a
/// message needs it, as most values have none.
#[derive(Clone, Copy)]
enum Path<'a> {
    Text(&'a str),
    Field(Kind, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Text(t) => f.write_str(t),
            Path::Field(kind, name) => write!(f, "{kind}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

struct Parsed<'n> {
    entity: DesiredEntity,
    nested: Vec<(&'static str, &'n SNode)>,
    /// Fields whose values were already reported as wrong.
    failed: std::collections::HashSet<String>,
}

/// `${NAME}`, a whole value that is one variable without a default.
fn is_bare_variable(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn uuid_nil() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}

/// Kong's error tree for one field as (path, message) leaves: `paths[1]`,
/// `config.minute`.
pub(crate) fn flatten(path: &str, err: &Value) -> Vec<(String, String)> {
    match err {
        Value::String(s) => vec![(path.to_owned(), s.clone())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_null())
            .flat_map(|(i, e)| flatten(&format!("{path}[{i}]"), e))
            .collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, e)| {
                if k == "@entity" {
                    flatten(path, e)
                } else {
                    flatten(&format!("{path}.{k}"), e)
                }
            })
            .collect(),
        other => vec![(path.to_owned(), other.to_string())],
    }
}

/// `, did you mean `x`?` when a known name is close to `name`.
/// `, did you mean `x`?` for the candidate closest to `name`, if close enough.
fn suggestion<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    // Strictly above 0.8, as it always was.
    closest(name, candidates, strsim::jaro_winkler, 0.8 + f64::EPSILON)
}

/// A suggestion only for a near-miss typo (`key-authh`), for names where a different
/// name is likely deliberate (a custom plugin `my-auth` is not a typo of `key-auth`).
fn typo_suggestion<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(
        name,
        candidates,
        strsim::normalized_damerau_levenshtein,
        0.8,
    )
}

fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    similarity: fn(&str, &str) -> f64,
    threshold: f64,
) -> String {
    candidates
        .map(|c| (similarity(name, c), c))
        .filter(|(score, _)| *score >= threshold)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

/// The same entity defined twice (by kind and name, or by id) is an error naming both
/// places.
pub(crate) fn check_duplicates(state: &DesiredState, diagnostics: &mut Vec<Diagnostic>) {
    // Hashed, not sorted: this runs over every entity of the gateway.
    let mut seen: HashMap<(Kind, &str, &str), &DesiredEntity> =
        HashMap::with_capacity(2 * state.entities.len());
    for e in &state.entities {
        // A target's key is unique within its upstream only (its cache key).
        let key = e.kind.lookup_key().filter(|_| e.kind != Kind::Target);
        let keys = [
            (
                key.unwrap_or("name"),
                key.and_then(|k| e.fields.get(k)).and_then(Value::as_str),
            ),
            ("id", e.fields.get("id").and_then(Value::as_str)),
        ];
        for (what, value) in keys {
            let Some(value) = value else { continue };
            if let Some(first) = seen.insert((e.kind, what, value), e) {
                diagnostics.push(Diagnostic {
                    location: Some(e.location.clone()),
                    file: e.location.file.clone(),
                    message: format!(
                        "{} with {what} '{value}' is defined twice: first at {}, again here",
                        e.kind, first.location
                    ),
                });
            }
        }
    }
}

/// Every reference names an entity the files define: `service: orders` needs a service
/// named orders (or with that id) somewhere in the desired state.
pub(crate) fn check_references(state: &DesiredState, diagnostics: &mut Vec<Diagnostic>) {
    use std::collections::HashSet;
    let mut known: HashSet<(Kind, &str)> = HashSet::new();
    for e in &state.entities {
        if let Some(id) = e.fields.get("id").and_then(Value::as_str) {
            known.insert((e.kind, id));
        }
        if let Some(key) = e
            .kind
            .lookup_key()
            .and_then(|k| e.fields.get(k))
            .and_then(Value::as_str)
        {
            known.insert((e.kind, key));
        }
    }
    for e in &state.entities {
        for (field, target) in e.kind.foreign_keys() {
            let wanted = match e.references.get(*field) {
                Some(Reference::Id(v) | Reference::Name(v)) => v,
                _ => continue,
            };
            if !known.contains(&(*target, wanted.as_str())) {
                let location = e.location_of(field);
                diagnostics.push(Diagnostic {
                    file: location.file.clone(),
                    location: Some(location),
                    message: format!(
                        "{}.{field}: no {target} '{wanted}' in the desired state",
                        e.kind
                    ),
                });
            }
        }
    }
}
