//! An independent judge of convergence: does the gateway hold exactly what a
//! desired-state file says, entity by entity?
//!
//! carl's own `--check` is carl's planner judging itself. This module shares none of
//! carl's code: it reads the file as plain YAML, reads the Admin API as plain JSON, and
//! names every entity by what identifies it to a person (a service by its name, a target
//! by its upstream and address, a plugin by its name and scope), so a duplicate, an
//! orphan, a missing entity or a wrong field each shows as a line of the verdict.
//!
//! It understands the decK shapes the suite's files use (nested and top-level services,
//! routes, plugins, consumers with key-auth and ACL credentials, upstreams with targets,
//! certificates with SNIs, a service's `url`) and refuses anything else, rather than
//! pass it unchecked.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// What a comparison found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Entities the file describes, each looked up and compared.
    pub compared: usize,
    /// Entities the gateway holds.
    pub live: usize,
    /// One line per difference: missing, unexpected, duplicated, orphaned, or a field
    /// with another value. Empty when the gateway matches the file.
    pub mismatches: Vec<String>,
}

impl Verdict {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// One entity the file asks for.
#[derive(Debug)]
struct Expected {
    fields: Map<String, Value>,
    /// Foreign-key field → the key of the entity it must point to.
    refs: Vec<(&'static str, String)>,
}

/// Fields whose values are never printed in a verdict.
const SECRET: &[&str] = &["key", "password", "secret", "private_key", "cert"];

/// Compares the gateway behind `get` (an Admin API GET of a path, answered as JSON)
/// with the desired-state file `desired_yaml`.
pub fn compare(
    desired_yaml: &str,
    get: &mut dyn FnMut(&str) -> Result<Value, String>,
) -> Result<Verdict, String> {
    let expected = expected(desired_yaml)?;
    let live = live(get)?;
    let mut verdict = Verdict {
        compared: expected.len(),
        live: live.values().map(Vec::len).sum(),
        mismatches: Vec::new(),
    };
    for (key, want) in &expected {
        let Some(found) = live.get(key) else {
            verdict.mismatches.push(format!("{key}: missing"));
            continue;
        };
        let (entity, parents) = &found[0];
        for (field, value) in &want.fields {
            let have = entity.get(field).unwrap_or(&Value::Null);
            if !subset(value, have) {
                let shown = |v: &Value| match SECRET.contains(&field.as_str()) {
                    true => "<secret>".to_owned(),
                    false => v.to_string(),
                };
                verdict.mismatches.push(format!(
                    "{key}: {field} is {} in the gateway, {} in the file",
                    shown(have),
                    shown(value)
                ));
            }
        }
        for (field, parent) in &want.refs {
            let have = parents.get(field).map(String::as_str).unwrap_or("none");
            if have != parent {
                verdict
                    .mismatches
                    .push(format!("{key}: {field} is {have}, the file says {parent}"));
            }
        }
    }
    for (key, found) in &live {
        if !expected.contains_key(key) {
            verdict
                .mismatches
                .push(format!("{key}: in the gateway, not in the file"));
        }
        if found.len() > 1 {
            verdict
                .mismatches
                .push(format!("{key}: held {} times", found.len()));
        }
    }
    Ok(verdict)
}

// ---- the file ----

fn expected(yaml: &str) -> Result<BTreeMap<String, Expected>, String> {
    let root: Value = serde_saphyr::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let root = root.as_object().ok_or("the file is not a mapping")?;
    let mut out = File::default();
    for (section, items) in root {
        let list = || {
            items
                .as_array()
                .ok_or(format!("{section}: not a list"))
                .map(|l| l.iter())
        };
        match section.as_str() {
            "_format_version" | "_info" | "_transform" => {}
            "services" => list()?.try_for_each(|s| out.service(s))?,
            "routes" => list()?.try_for_each(|r| out.route(r, None))?,
            "consumers" => list()?.try_for_each(|c| out.consumer(c))?,
            "upstreams" => list()?.try_for_each(|u| out.upstream(u))?,
            "certificates" => list()?.try_for_each(|c| out.certificate(c))?,
            "plugins" => list()?.try_for_each(|p| out.plugin(p, Scope::default()))?,
            other => return Err(format!("the oracle does not know '{other}'")),
        }
    }
    Ok(out.0)
}

/// Where a plugin is attached: the keys of its service, route and consumer.
#[derive(Debug, Default, Clone)]
struct Scope {
    service: Option<String>,
    route: Option<String>,
    consumer: Option<String>,
}

#[derive(Default)]
struct File(BTreeMap<String, Expected>);

fn object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or(format!("not a mapping: {v}"))
}

fn text<'v>(o: &'v Map<String, Value>, field: &str) -> Result<&'v str, String> {
    o.get(field)
        .and_then(Value::as_str)
        .ok_or(format!("no '{field}' in {}", Value::Object(o.clone())))
}

/// The fields of `o` without its nested children.
fn own(o: &Map<String, Value>, children: &[&str]) -> Map<String, Value> {
    o.iter()
        .filter(|(k, _)| !children.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn children<'v>(o: &'v Map<String, Value>, field: &str) -> Result<&'v [Value], String> {
    match o.get(field) {
        None => Ok(&[]),
        Some(v) => v
            .as_array()
            .map(Vec::as_slice)
            .ok_or(format!("{field}: not a list")),
    }
}

/// A reference by name (`service: orders` or `service: {name: orders}`).
fn reference(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("name").and_then(Value::as_str))
        .or_else(|| v.get("username").and_then(Value::as_str))
}

impl File {
    fn add(&mut self, key: String, fields: Map<String, Value>, refs: Vec<(&'static str, String)>) {
        self.0.insert(key, Expected { fields, refs });
    }

    fn service(&mut self, s: &Value) -> Result<(), String> {
        let s = object(s)?;
        let key = format!("service {}", text(s, "name")?);
        let mut fields = own(s, &["routes", "plugins", "url"]);
        if let Some(url) = s.get("url").and_then(Value::as_str) {
            fields.extend(url_fields(url)?);
        }
        for r in children(s, "routes")? {
            self.route(r, Some(&key))?;
        }
        let scope = Scope {
            service: Some(key.clone()),
            ..Scope::default()
        };
        for p in children(s, "plugins")? {
            self.plugin(p, scope.clone())?;
        }
        self.add(key, fields, Vec::new());
        Ok(())
    }

    fn route(&mut self, r: &Value, service: Option<&str>) -> Result<(), String> {
        let r = object(r)?;
        let key = format!("route {}", text(r, "name")?);
        let service = match service {
            Some(s) => Some(s.to_owned()),
            None => r
                .get("service")
                .and_then(reference)
                .map(|n| format!("service {n}")),
        };
        let scope = Scope {
            route: Some(key.clone()),
            ..Scope::default()
        };
        for p in children(r, "plugins")? {
            self.plugin(p, scope.clone())?;
        }
        let refs = service.map(|s| ("service", s)).into_iter().collect();
        self.add(key, own(r, &["plugins", "service"]), refs);
        Ok(())
    }

    fn consumer(&mut self, c: &Value) -> Result<(), String> {
        let c = object(c)?;
        let key = format!("consumer {}", text(c, "username")?);
        let refs = || vec![("consumer", key.clone())];
        for k in children(c, "keyauth_credentials")? {
            let k = object(k)?;
            self.add(key_auth_key(&key, text(k, "key")?), own(k, &[]), refs());
        }
        for a in children(c, "acls")? {
            let a = object(a)?;
            self.add(
                format!("acl {key}/{}", text(a, "group")?),
                own(a, &[]),
                refs(),
            );
        }
        let scope = Scope {
            consumer: Some(key.clone()),
            ..Scope::default()
        };
        for p in children(c, "plugins")? {
            self.plugin(p, scope.clone())?;
        }
        if let Some(other) = c.keys().find(|k| {
            k.ends_with("_credentials") && *k != "keyauth_credentials"
                || k.as_str() == "jwt_secrets"
        }) {
            return Err(format!("the oracle does not know consumers' '{other}'"));
        }
        self.add(
            key,
            own(c, &["keyauth_credentials", "acls", "plugins"]),
            Vec::new(),
        );
        Ok(())
    }

    fn upstream(&mut self, u: &Value) -> Result<(), String> {
        let u = object(u)?;
        let key = format!("upstream {}", text(u, "name")?);
        for t in children(u, "targets")? {
            let t = object(t)?;
            self.add(
                format!("target {key}/{}", text(t, "target")?),
                own(t, &[]),
                vec![("upstream", key.clone())],
            );
        }
        self.add(key, own(u, &["targets"]), Vec::new());
        Ok(())
    }

    fn certificate(&mut self, c: &Value) -> Result<(), String> {
        let c = object(c)?;
        let key = certificate_key(text(c, "cert")?);
        for s in children(c, "snis")? {
            let s = object(s)?;
            self.add(
                format!("sni {}", text(s, "name")?),
                own(s, &[]),
                vec![("certificate", key.clone())],
            );
        }
        self.add(key, own(c, &["snis"]), Vec::new());
        Ok(())
    }

    fn plugin(&mut self, p: &Value, scope: Scope) -> Result<(), String> {
        let p = object(p)?;
        let mut scope = scope;
        for (field, slot) in [
            ("service", &mut scope.service),
            ("route", &mut scope.route),
            ("consumer", &mut scope.consumer),
        ] {
            if let Some(name) = p.get(field).and_then(reference) {
                *slot = Some(format!("{field} {name}"));
            }
        }
        let key = plugin_key(text(p, "name")?, &scope);
        let refs = [
            ("service", scope.service),
            ("route", scope.route),
            ("consumer", scope.consumer),
        ]
        .into_iter()
        .filter_map(|(f, k)| k.map(|k| (f, k)))
        .collect();
        self.add(key, own(p, &["service", "route", "consumer"]), refs);
        Ok(())
    }
}

/// A certificate is known by its certificate: the base64 body's first characters.
fn certificate_key(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    let end = body.len().min(32);
    let tail = body.len().saturating_sub(32);
    format!("certificate {}…{}", &body[..end], &body[tail..])
}

/// A key-auth credential is known by its key, which is a secret: the verdict shows a
/// fingerprint of it (FNV-1a), never the key.
fn key_auth_key(consumer: &str, key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("key-auth {hash:016x} of {consumer}")
}

fn plugin_key(name: &str, scope: &Scope) -> String {
    let on: Vec<&str> = [&scope.service, &scope.route, &scope.consumer]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    match on.is_empty() {
        true => format!("plugin {name} (global)"),
        false => format!("plugin {name} on {}", on.join(", ")),
    }
}

/// `scheme://host[:port][/path]`, as Kong splits a service's `url`.
fn url_fields(url: &str) -> Result<Map<String, Value>, String> {
    let (scheme, rest) = url.split_once("://").ok_or(format!("url {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("url {url}"))?),
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let mut out = Map::new();
    out.insert("protocol".into(), scheme.into());
    out.insert("host".into(), host.into());
    out.insert("port".into(), port.into());
    out.insert("path".into(), path.map_or(Value::Null, Value::from));
    Ok(out)
}

/// Whether the gateway's `have` holds what the file's `want` says: every field the
/// file gives, equal (Kong fills the others with defaults).
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| subset(v, h.get(k).unwrap_or(&Value::Null))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        _ => want == have,
    }
}

// ---- the gateway ----

/// Each entity the gateway holds, by key: the entity, and its parents' keys by
/// foreign-key field. More than one entry under a key is a duplicate.
type Live = HashMap<String, Vec<(Map<String, Value>, HashMap<&'static str, String>)>>;

/// Every page of a collection.
fn all(
    get: &mut dyn FnMut(&str) -> Result<Value, String>,
    path: &str,
) -> Result<Vec<Map<String, Value>>, String> {
    let mut out = Vec::new();
    let mut next = Some(format!("{path}?size=1000"));
    let mut pages = 0;
    while let Some(at) = next.take() {
        pages += 1;
        if pages > 100_000 {
            return Err(format!("{path}: more than 100,000 pages"));
        }
        let page = get(&at)?;
        let data = page["data"]
            .as_array()
            .ok_or(format!("{at}: not a page: {page}"))?;
        for e in data {
            out.push(object(e)?.clone());
        }
        next = page["next"].as_str().map(str::to_owned);
    }
    Ok(out)
}

fn id(e: &Map<String, Value>) -> String {
    e.get("id").and_then(Value::as_str).unwrap_or("").to_owned()
}

fn live(get: &mut dyn FnMut(&str) -> Result<Value, String>) -> Result<Live, String> {
    let mut live: Live = HashMap::new();
    // id → key of the entities others point to.
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut orphans = Vec::new();
    let add = |live: &mut Live, key: String, e, parents| {
        live.entry(key).or_default().push((e, parents));
    };
    for (collection, kind, name) in [
        ("/services", "service", "name"),
        ("/routes", "route", "name"),
        ("/consumers", "consumer", "username"),
        ("/upstreams", "upstream", "name"),
    ] {
        for e in all(get, collection)? {
            let key = format!("{kind} {}", text(&e, name)?);
            keys.insert(id(&e), key.clone());
            let mut parents = HashMap::new();
            if kind == "route"
                && let Some(service) = e.get("service").and_then(|s| s.get("id"))
            {
                let service = service.as_str().unwrap_or("").to_owned();
                parents.insert("service", service);
            }
            add(&mut live, key, e, parents);
        }
    }
    let certificates = all(get, "/certificates")?;
    for e in &certificates {
        let key = certificate_key(text(e, "cert")?);
        keys.insert(id(e), key.clone());
        add(&mut live, key, e.clone(), HashMap::new());
    }
    // Parents are resolved once every parent is known.
    let resolve = |parents: HashMap<&'static str, String>,
                   keys: &HashMap<String, String>,
                   orphans: &mut Vec<String>,
                   what: &str| {
        parents
            .into_iter()
            .map(|(field, id)| {
                let key = keys.get(&id).cloned().unwrap_or_else(|| {
                    orphans.push(format!("{what}: its {field} {id} does not exist"));
                    format!("{field} {id} (missing)")
                });
                (field, key)
            })
            .collect::<HashMap<_, _>>()
    };
    for list in live.values_mut() {
        for (e, parents) in list.iter_mut() {
            if !parents.is_empty() {
                let what = format!("route {}", text(e, "name").unwrap_or("?"));
                *parents = resolve(std::mem::take(parents), &keys, &mut orphans, &what);
            }
        }
    }
    let parent = |e: &Map<String, Value>, field: &'static str| {
        e.get(field)
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map(|id| (field, id.to_owned()))
    };
    for e in all(get, "/snis")? {
        let key = format!("sni {}", text(&e, "name")?);
        let parents = parent(&e, "certificate").into_iter().collect();
        let parents = resolve(parents, &keys, &mut orphans, &key);
        add(&mut live, key, e, parents);
    }
    for e in all(get, "/key-auths")? {
        let parents = parent(&e, "consumer").into_iter().collect();
        let parents = resolve(parents, &keys, &mut orphans, "a key-auth credential");
        let consumer = parents.get("consumer").cloned().unwrap_or_default();
        let key = key_auth_key(&consumer, text(&e, "key")?);
        add(&mut live, key, e, parents);
    }
    for e in all(get, "/acls")? {
        let parents = parent(&e, "consumer").into_iter().collect();
        let parents = resolve(parents, &keys, &mut orphans, "an ACL");
        let consumer = parents.get("consumer").cloned().unwrap_or_default();
        let key = format!("acl {consumer}/{}", text(&e, "group")?);
        add(&mut live, key, e, parents);
    }
    for e in all(get, "/plugins")? {
        let parents: HashMap<_, _> = ["service", "route", "consumer"]
            .into_iter()
            .filter_map(|f| parent(&e, f))
            .collect();
        let name = text(&e, "name")?.to_owned();
        let parents = resolve(parents, &keys, &mut orphans, &format!("plugin {name}"));
        let scope = Scope {
            service: parents.get("service").cloned(),
            route: parents.get("route").cloned(),
            consumer: parents.get("consumer").cloned(),
        };
        add(&mut live, plugin_key(&name, &scope), e, parents);
    }
    let upstreams: Vec<(String, String)> = keys
        .iter()
        .filter(|(_, k)| k.starts_with("upstream "))
        .map(|(id, k)| (id.clone(), k.clone()))
        .collect();
    for (upstream_id, upstream) in upstreams {
        for e in all(get, &format!("/upstreams/{upstream_id}/targets"))? {
            let key = format!("target {upstream}/{}", text(&e, "target")?);
            let parents = HashMap::from([("upstream", upstream.clone())]);
            add(&mut live, key, e, parents);
        }
    }
    for o in orphans {
        live.entry(format!("orphan: {o}")).or_default();
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny in-memory Admin API: collections served as one page each.
    fn gateway(collections: Value) -> impl FnMut(&str) -> Result<Value, String> {
        move |path: &str| {
            let path = path.split('?').next().unwrap_or(path);
            let data = collections.get(path).cloned().unwrap_or(json!([]));
            Ok(json!({"data": data, "next": null}))
        }
    }

    const FILE: &str = "
_format_version: '3.0'
services:
- name: orders
  url: https://orders.internal:8443/v1
  routes:
  - name: orders-read
    paths: [/orders]
  plugins:
  - name: rate-limiting
    config: {minute: 10}
upstreams:
- name: orders.internal
  targets:
  - target: 10.0.0.1:80
";

    fn matching() -> Value {
        json!({
            "/services": [{"id": "s1", "name": "orders", "protocol": "https",
                "host": "orders.internal", "port": 8443, "path": "/v1", "retries": 5}],
            "/routes": [{"id": "r1", "name": "orders-read", "paths": ["/orders"],
                "service": {"id": "s1"}}],
            "/plugins": [{"id": "p1", "name": "rate-limiting", "service": {"id": "s1"},
                "route": null, "consumer": null,
                "config": {"minute": 10, "hour": null}}],
            "/upstreams": [{"id": "u1", "name": "orders.internal"}],
            "/upstreams/u1/targets": [{"id": "t1", "target": "10.0.0.1:80",
                "upstream": {"id": "u1"}}],
        })
    }

    #[test]
    fn a_gateway_holding_the_file_matches() {
        let v = compare(FILE, &mut gateway(matching())).unwrap();
        assert!(v.matches(), "{:?}", v.mismatches);
        assert_eq!((v.compared, v.live), (5, 5));
    }

    #[test]
    fn each_kind_of_difference_is_named() {
        let mut g = matching();
        // A field changed, a duplicate, an extra entity, a missing one, a route moved to
        // a service that does not exist.
        g["/services"][0]["port"] = json!(443);
        g["/upstreams/u1/targets"] = json!([
            {"id": "t1", "target": "10.0.0.1:80"},
            {"id": "t2", "target": "10.0.0.1:80"},
            {"id": "t3", "target": "10.0.0.2:80"},
        ]);
        g["/plugins"] = json!([]);
        g["/routes"][0]["service"] = json!({"id": "gone"});
        let v = compare(FILE, &mut gateway(g)).unwrap();
        let all = v.mismatches.join("\n");
        for want in [
            "service orders: port is 443 in the gateway, 8443 in the file",
            "target upstream orders.internal/10.0.0.1:80: held 2 times",
            "target upstream orders.internal/10.0.0.2:80: in the gateway, not in the file",
            "plugin rate-limiting on service orders: missing",
            "route orders-read: service is service gone (missing), the file says service orders",
            "orphan: route orders-read: its service gone does not exist",
        ] {
            assert!(all.contains(want), "no '{want}' in:\n{all}");
        }
    }

    #[test]
    fn secrets_are_never_printed() {
        let file =
            "consumers:\n- username: a\n  keyauth_credentials:\n  - key: hunter2\n    tags: [x]\n";
        let g = json!({
            "/consumers": [{"id": "c1", "username": "a"}],
            "/key-auths": [{"id": "k1", "key": "hunter2", "tags": ["y"], "consumer": {"id": "c1"}}],
        });
        let v = compare(file, &mut gateway(g.clone())).unwrap();
        assert_eq!(v.mismatches.len(), 1, "{:?}", v.mismatches);
        assert!(v.mismatches[0].contains("tags is [\"y\"]"));
        // Missing, and with another key: named by a fingerprint, the key never shown.
        let other = file.replace("hunter2", "swordfish");
        let v = compare(&other, &mut gateway(g)).unwrap();
        let all = v.mismatches.join("\n");
        assert!(all.contains("of consumer a: missing"), "{all}");
        assert!(
            !all.contains("hunter2") && !all.contains("swordfish"),
            "{all}"
        );
    }

    #[test]
    fn shapes_it_does_not_know_are_refused() {
        let err = compare("vaults: []\n", &mut gateway(json!({}))).unwrap_err();
        assert!(err.contains("does not know 'vaults'"), "{err}");
    }
}
