//! Kong 2.x values in Kong 3.0 terms, as Kong's own 3.0 migration rewrites them.
//!
//! Kong 2.x guessed whether a route path was a regex; 3.0 treats a path as a regex
//! only when it starts with `~`. When the database is upgraded, Kong rewrites every stored
//! path (`kong/db/migrations/migrate_path_280_300.lua`): a path made only of
//! `[a-zA-Z0-9.\-_~/%]` is plain and gets normalised (percent-decoding, dot segments,
//! merged slashes, `kong/tools/uri.lua`); any other path is a regex and gets a `~`
//! prefix, its percent-encoded triplets decoded (regex metacharacters escaped). carl
//! applies the same rewrite when it dumps a 2.8 gateway, so the file means on 3.x what
//! the routes meant on 2.8.

/// `path` as Kong 3.0's migration stores it.
pub fn migrate_route_path(path: &str) -> String {
    if is_plain(path) {
        normalize(path)
    } else {
        format!("~{}", decode(path, true))
    }
}

/// Kong 2.x's "not a regex": only characters that cannot be regex syntax.
fn is_plain(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'/' | b'%'))
}

/// RFC 3986 reserved characters (plus `%`): kept encoded, hex upper-cased.
fn reserved(b: u8) -> bool {
    b"!*'();:@&=+$,/?%#[]".contains(&b)
}

/// Decodes `%XX` triplets: reserved characters stay encoded (upper-case hex); in a
/// regex, a decoded metacharacter is escaped with `\`.
fn decode(s: &str, regex: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = &s[i + 1..i + 3];
            let b = u8::from_str_radix(hex, 16).unwrap_or(0);
            if reserved(b) {
                out.push(b'%');
                out.extend(hex.to_ascii_uppercase().bytes());
            } else {
                if regex && b".^-{}\\|".contains(&b) {
                    out.push(b'\\');
                }
                out.push(b);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `kong.tools.uri.normalize(path, true)`: decode, remove dot segments, merge slashes.
fn normalize(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return path.to_owned();
    }
    let mut rest = decode(path, false);
    let mut out: Vec<String> = Vec::new();
    while !rest.is_empty() {
        if rest == "/." || rest == "/.." {
            if rest == "/.." {
                out.pop();
            }
            rest = "/".to_owned();
        } else if rest == "." || rest == ".." {
            rest.clear();
        } else if rest.starts_with("../") {
            rest.drain(..3);
        } else if rest.starts_with("./") {
            rest.drain(..2);
        } else if rest.starts_with("//") {
            rest.drain(..1);
        } else if rest.starts_with("/./") {
            rest.drain(..2);
        } else if rest.starts_with("/../") {
            rest.drain(..3);
            out.pop();
        } else {
            let end = rest[1..].find('/').map_or(rest.len(), |i| i + 1);
            out.push(rest[..end].to_owned());
            rest.drain(..end);
        }
    }
    out.concat()
}

#[cfg(test)]
mod tests {
    use super::migrate_route_path as m;

    #[test]
    fn plain_paths_stay_plain_and_are_normalised() {
        assert_eq!(m("/orders"), "/orders");
        assert_eq!(m("/"), "/");
        assert_eq!(m("/a//b"), "/a/b");
        assert_eq!(m("/a/./b/../c"), "/a/c");
        assert_eq!(m("/caf%C3%A9"), "/café");
        assert_eq!(m("/a%2fb"), "/a%2Fb");
        assert_eq!(m("/v1.0/x-y_z~"), "/v1.0/x-y_z~");
    }

    #[test]
    fn anything_else_was_a_regex_and_gets_a_tilde() {
        assert_eq!(m("/users/\\d+"), "~/users/\\d+");
        assert_eq!(m("/v1/(orders|users)$"), "~/v1/(orders|users)$");
        assert_eq!(m("/a/[0-9]+/%2E"), "~/a/[0-9]+/\\.");
        assert_eq!(m("/x*"), "~/x*");
    }
}
