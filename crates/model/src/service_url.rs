//! Kong's `url` shorthand on services, expanded the way `services.lua` does it.

use serde_json::{Value, json};

/// The fields `url` stands for: `protocol`, `host`, `port`, `path`.
///
/// Kong's rules (kong/db/schema/entities/services.lua): the scheme is the protocol,
/// else `https` for port 443, `http` for port 80, else `http`; the port is explicit,
/// else 80 for http, 443 for https, else 80; the path is the URL's path or null.
pub fn expand(url: &str) -> Result<[(&'static str, Value); 4], String> {
    let invalid = || format!("invalid url '{url}': expected scheme://host[:port][/path]");
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if !s.is_empty() => (Some(s.to_ascii_lowercase()), r),
        Some(_) => return Err(invalid()),
        None => (None, url),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    // Drop a query or fragment: Kong's service has no field for them.
    let path = path
        .map(|p| p.split(['?', '#']).next().unwrap_or(""))
        .filter(|p| !p.is_empty());
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(invalid)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid());
    }
    let port: Option<u16> = match port {
        Some(p) => Some(p.parse().map_err(|_| invalid())?),
        None => None,
    };
    let protocol = scheme.unwrap_or_else(|| {
        match port {
            Some(443) => "https",
            _ => "http",
        }
        .to_owned()
    });
    let port = port.unwrap_or(if protocol == "https" { 443 } else { 80 });
    Ok([
        ("protocol", json!(protocol)),
        ("host", json!(host)),
        ("port", json!(port)),
        ("path", path.map_or(Value::Null, |p| json!(p))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Vec<Value> {
        expand(url).unwrap().into_iter().map(|(_, v)| v).collect()
    }

    #[test]
    fn expands_like_kong() {
        assert_eq!(
            get("http://orders.internal:8080/api"),
            [
                json!("http"),
                json!("orders.internal"),
                json!(8080),
                json!("/api")
            ]
        );
        assert_eq!(
            get("https://orders.internal"),
            [
                json!("https"),
                json!("orders.internal"),
                json!(443),
                Value::Null
            ]
        );
        assert_eq!(
            get("orders.internal:443"),
            [
                json!("https"),
                json!("orders.internal"),
                json!(443),
                Value::Null
            ]
        );
        assert_eq!(
            get("grpc://[::1]:9000"),
            [json!("grpc"), json!("::1"), json!(9000), Value::Null]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(expand("http://").is_err());
        assert!(expand("http://h:port").is_err());
        assert!(expand("://h").is_err());
    }
}
