//! carl's desired-state files.
//!
//! Reads Kong's declarative format (`_format_version: "3.0"`), the format Kong DB-less
//! mode and decK read, with `${VAR}` / `${VAR:-default}` interpolation, and turns it into
//! a flat list of [`DesiredEntity`] values. Every error names `file:line:col` and what
//! was expected; loading never touches the network.
//!
//! The pipeline is: [`node::parse`] (YAML → tree with locations) →
//! [`load`] (format, nesting, interpolation, schema checks) → [`DesiredState`].

pub mod dump;
mod interpolate;
mod load;
pub mod node;
mod report;
mod source;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carl_model::{Kind, Object};
use serde_json::Value;

pub use interpolate::interpolate;
pub use report::RenderOptions;
pub use source::Source;

/// The largest file carl reads. A 20,000-service gateway is about 30 MB of YAML; a
/// larger file is refused before it is read, so memory stays bounded.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A place in a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u64,
    pub column: u64,
    /// Byte offset in the file as read (before masking), for source snippets; set
    /// from `line` and `column` when loading fails.
    pub offset: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is; `None` only for errors about a whole file (unreadable).
    pub location: Option<Location>,
    /// The file, when there is no location.
    pub file: Arc<str>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in the desired-state files. Loading reports as many as it can
/// find in one pass, so a user fixes them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    /// The text of each file a diagnostic points into, secrets masked, for snippets
    /// ([`LoadError::render`]).
    pub sources: BTreeMap<Arc<str>, Source>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A reference from one desired entity to another, as the file wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Id(String),
    /// The referenced entity's endpoint key (a service's name, a consumer's username).
    Name(String),
    /// The entity at this index of [`DesiredState::entities`]: a parent without an id
    /// or endpoint key (a certificate) that nests its children.
    Parent(usize),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Id(id) => write!(f, "id {id}"),
            Reference::Name(name) => f.write_str(name),
            Reference::Parent(i) => write!(f, "the entity it is nested in (#{i})"),
        }
    }
}

/// A few values by field name, in one sorted allocation: an entity has a handful of
/// fields, and a `BTreeMap` node costs several hundred bytes however few it holds
/// (tens of megabytes over a gateway of 70,000 entities).
pub type FieldMap<V> = litemap::LiteMap<Box<str>, V>;

/// Where a field's value starts, in the file of its entity (always the same file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPos {
    pub line: u32,
    pub column: u32,
}

impl From<&Location> for FieldPos {
    fn from(l: &Location) -> Self {
        FieldPos {
            line: u32::try_from(l.line).unwrap_or(u32::MAX),
            column: u32::try_from(l.column).unwrap_or(u32::MAX),
        }
    }
}

/// One entity the files ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredEntity {
    pub kind: Kind,
    /// The fields as written, after interpolation and shorthand expansion, without the
    /// foreign keys (see `references`) and without defaults (the planner fills those
    /// from the target Kong's schemas). A [`FieldMap`], not an `Object`: a gateway's
    /// entities are tens of thousands of small maps; [`DesiredEntity::object`] makes
    /// the `Object` the planner and the validator work on.
    pub fields: FieldMap<Value>,
    /// Foreign keys by field name (`service` of a route).
    pub references: FieldMap<Reference>,
    /// Where the entity starts.
    pub location: Location,
    /// Where each field's value is, for errors found later (planner, Kong).
    pub field_locations: FieldMap<FieldPos>,
}

impl DesiredEntity {
    /// The entity's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.fields
            .get(self.kind.endpoint_key())
            .and_then(|v| v.as_str())
    }

    /// The fields as an `Object` (a copy).
    pub fn object(&self) -> Object {
        self.fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// The location of `field`, or of the entity when the field has none.
    pub fn location_of(&self, field: &str) -> Location {
        match self.field_locations.get(field) {
            Some(pos) => Location {
                file: self.location.file.clone(),
                line: pos.line.into(),
                column: pos.column.into(),
                offset: 0,
            },
            None => self.location.clone(),
        }
    }
}

impl DesiredEntity {
    /// The body to validate this entity with (a gateway's `/schemas/.../validate`):
    /// its fields, with references as placeholders of the right shape (they resolve at
    /// plan time).
    pub fn validation_body(&self) -> Object {
        let mut body = self.object();
        for field in self.references.keys() {
            body.insert(
                field.to_string(),
                serde_json::json!({ "id": "00000000-0000-0000-0000-000000000000" }),
            );
        }
        body
    }

    /// Kong's error for this entity (the `fields` of a code-2 body: `@entity` messages
    /// and a tree of field errors), as diagnostics at the places in the file.
    pub fn diagnostics(&self, fields: &serde_json::Value) -> Vec<Diagnostic> {
        let kind = self.kind;
        let at = |location: &Location, message: String| Diagnostic {
            location: Some(location.clone()),
            file: location.file.clone(),
            message,
        };
        let mut out = Vec::new();
        let Some(map) = fields.as_object() else {
            return vec![at(&self.location, format!("{kind}: {fields}"))];
        };
        for (field, err) in map {
            if field == "@entity" {
                for m in err.as_array().into_iter().flatten() {
                    out.push(at(
                        &self.location,
                        format!("{kind}: {}", m.as_str().unwrap_or_default()),
                    ));
                }
                continue;
            }
            if self.references.contains_key(field.as_str()) {
                continue;
            }
            for (path, message) in load::flatten(field, err) {
                out.push(at(
                    &self.location_of(field),
                    format!("{kind}.{path}: {message}"),
                ));
            }
        }
        out
    }
}

/// Everything the desired-state files describe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Entities in file order, parents before their nested children.
    pub entities: Vec<DesiredEntity>,
    /// `_info.select_tags`, sorted, and where they were first given: the files manage
    /// only the gateway's entities carrying all of them.
    pub select_tags: Option<(Vec<String>, Location)>,
    /// What carl could not check offline but did not refuse (a plugin its snapshot does
    /// not know): printed as warnings, checked by `carl validate --online`.
    pub warnings: Vec<Diagnostic>,
    /// Files that say `_transform: false`: their basic-auth passwords are Kong's hashes.
    pub untransformed_files: std::collections::BTreeSet<Arc<str>>,
    /// Every file read, with the SHA-256 of its bytes (hex): what a saved plan records
    /// so that applying it can check it reads the same files.
    pub file_digests: BTreeMap<Arc<str>, String>,
}

/// Where interpolation takes variable values from.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads one desired-state document from text; `file` names it in errors.
pub fn load_str(file: &str, text: &str, env: Env<'_>) -> Result<DesiredState, LoadError> {
    let mut state = DesiredState::default();
    let mut diagnostics = Vec::new();
    let name: Arc<str> = Arc::from(file);
    let mut pending = Vec::new();
    let secrets = load::load_document(
        name.clone(),
        text,
        env,
        &mut state,
        &mut diagnostics,
        &mut pending,
    );
    load::check_state(&mut state, &pending, &mut diagnostics);
    finish(
        state,
        diagnostics,
        vec![(name, Cow::Borrowed(text), secrets)],
    )
}

/// Loads and merges files and directories (`-f a.yaml -f dir/`). A directory
/// contributes its `.yaml`, `.yml` and `.json` files, sorted by name.
pub fn load_paths(paths: &[PathBuf], env: Env<'_>) -> Result<DesiredState, LoadError> {
    let mut state = DesiredState::default();
    let mut diagnostics = Vec::new();
    // Texts are kept until the end: a duplicate or a dangling reference found after
    // all files are read still gets its snippet.
    let mut texts = Vec::new();
    let mut pending = Vec::new();
    for file in expand_paths(paths, &mut diagnostics) {
        let name: Arc<str> = Arc::from(file.display().to_string());
        match read_text(&file) {
            // JSON is YAML, but a `.json` file must be JSON, as Kong reads it (cjson):
            // a trailing comma that YAML forgives is an error here.
            Ok(text) if is_json(&file) && json_error(&name, &text, &mut diagnostics) => {
                texts.push((name, Cow::Owned(text), None));
            }
            Ok(text) => {
                state
                    .file_digests
                    .insert(name.clone(), sha256_hex(text.as_bytes()));
                let secrets = load::load_document(
                    name.clone(),
                    &text,
                    env,
                    &mut state,
                    &mut diagnostics,
                    &mut pending,
                );
                texts.push((name, Cow::Owned(text), secrets));
            }
            Err(message) => diagnostics.push(Diagnostic {
                location: None,
                file: name,
                message,
            }),
        }
    }
    load::check_state(&mut state, &pending, &mut diagnostics);
    // The list grew by doubling; it is kept for the whole run.
    state.entities.shrink_to_fit();
    finish(state, diagnostics, texts)
}

/// Whether the files at `paths` may set `_info.select_tags`: false only when every one
/// of them reads and none holds the text `_info`, which a file that sets them holds.
/// It lets a caller read the whole gateway while the files load; the loaded state's
/// select tags remain the truth (a caller checks them against what it read).
pub fn may_select_tags(paths: &[PathBuf]) -> bool {
    let mut ignored = Vec::new();
    expand_paths(paths, &mut ignored)
        .iter()
        .any(|file| read_text(file).map_or(true, |text| text.contains("_info")))
        || !ignored.is_empty()
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file's text, refusing what is not a desired-state file before parsing it: too
/// large, or not UTF-8 (a binary), with where the first bad byte is.
fn read_text(file: &Path) -> Result<String, String> {
    let size = std::fs::metadata(file)
        .map_err(|e| format!("cannot read file: {e}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "the file is {} MiB; carl reads files up to {} MiB: split the gateway into several files (-f dir/)",
            size / (1024 * 1024),
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read file: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        format!(
            "not UTF-8 text (invalid byte at line {line}, column {column}): carl reads YAML or JSON files encoded in UTF-8"
        )
    })
}

/// A file's name, text and the secret ranges loading found in it (`None`: unparsed).
type LoadedText<'a> = (Arc<str>, Cow<'a, str>, Option<Vec<std::ops::Range<usize>>>);

fn finish(
    state: DesiredState,
    diagnostics: Vec<Diagnostic>,
    texts: Vec<LoadedText<'_>>,
) -> Result<DesiredState, LoadError> {
    if diagnostics.is_empty() {
        return Ok(state);
    }
    // In the order a reader meets them: file by file, then line and column.
    let order: BTreeMap<&str, usize> = texts
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| (&**name, i))
        .collect();
    let mut diagnostics = diagnostics;
    diagnostics.sort_by_key(|d| {
        let file = order.get(&*d.file).copied().unwrap_or(usize::MAX);
        let place = d.location.as_ref().map(|l| (l.line, l.column));
        (file, place)
    });
    let mut sources = BTreeMap::new();
    for (name, text, secrets) in texts {
        let mut here: Vec<&mut Location> = diagnostics
            .iter_mut()
            .filter_map(|d| d.location.as_mut())
            .filter(|l| l.file == name)
            .collect();
        if here.is_empty() {
            continue;
        }
        // Offsets from line and column: the parser's byte spans are not available for
        // every error (a syntax error has only its line and column).
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        for location in &mut here {
            let line = (location.line.max(1) - 1) as usize;
            let start = line_starts.get(line).copied().unwrap_or(text.len());
            let column = (location.column.max(1) - 1) as usize;
            location.offset = text[start..]
                .char_indices()
                .take_while(|(_, c)| *c != '\n')
                .nth(column)
                .map_or_else(
                    || start + text[start..].find('\n').unwrap_or(text.len() - start),
                    |(i, _)| start + i,
                );
        }
        sources.insert(name, Source::from_load(&text, secrets));
    }
    Err(LoadError {
        diagnostics,
        sources,
    })
}

fn expand_paths(paths: &[PathBuf], diagnostics: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && is_state_file(p))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => diagnostics.push(Diagnostic {
                    location: None,
                    file: Arc::from(path.display().to_string()),
                    message: format!("cannot read directory: {e}"),
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}

fn is_json(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("json")
}

/// Reports a JSON syntax error at its place; true when there was one.
fn json_error(file: &Arc<str>, text: &str, diagnostics: &mut Vec<Diagnostic>) -> bool {
    let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) else {
        return false;
    };
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    diagnostics.push(Diagnostic {
        location: Some(Location {
            file: file.clone(),
            line: e.line() as u64,
            column: e.column() as u64,
            offset: 0,
        }),
        file: file.clone(),
        message: format!("invalid JSON: {message}"),
    });
    true
}

fn is_state_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}
