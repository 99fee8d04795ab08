//! Kong's `url` shorthand on services, expanded the way `services.lua` does it.

use serde_json::{Value, json};

/// The fields `url` stands for: `protocol`, `host`, `port`, `path`.
///
/// Kong's rules (kong/db/schema/entities/services.lua): the scheme is the protocol
/// (as written: `HTTP` is not a protocol), else, for `//host:port`, `https` for port
/// 443 and `http` otherwise; the port is explicit, else 80 for http, 443 for https,
/// else 80; the path is the URL's path or null.
pub fn expand(url: &str) -> Result<[(&'static str, Value); 4], String> {
    let invalid = || format!("invalid url '{url}': expected scheme://host[:port][/path]");
    // LuaSocket's url.parse, which Kong uses, reads `orders.internal:8080/v1` as scheme
    // `orders.internal` and path `8080/v1`, without a host: say so plainly instead.
    // `//host:port/path` (no scheme) is a URL to it, and to Kong.
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if !s.is_empty() => (Some(s.to_owned()), r),
        Some(_) => return Err(invalid()),
        None => match url.strip_prefix("//") {
            Some(rest) => (None, rest),
            None => {
                return Err(format!(
                    "invalid url '{url}': no scheme, so Kong would read no host from it; \
                 write http://{url} (or https://)"
                ));
            }
        },
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
        // No scheme: LuaSocket needs `//` before an authority.
        assert_eq!(
            get("//orders.internal:443"),
            [
                json!("https"),
                json!("orders.internal"),
                json!(443),
                Value::Null
            ]
        );
        assert_eq!(
            get("HTTP://h")[0],
            json!("HTTP"),
            "Kong keeps the scheme as written"
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
        // LuaSocket reads the scheme `orders.internal` and no host.
        let e = expand("orders.internal:443").unwrap_err();
        assert!(e.contains("write http://orders.internal:443"), "{e}");
    }
}
