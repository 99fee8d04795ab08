//! Paging and `?tags=` filtering of lists (kong/api/endpoints.lua,
//! kong/db/strategies/postgres/init.lua, kong/api/arguments.lua).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::Value;

use crate::errors::ApiError;

pub const DEFAULT_SIZE: usize = 100;
pub const MAX_SIZE: usize = 1000;

/// A parsed list request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub size: usize,
    /// The raw `size` argument, echoed in `next` when given.
    pub size_given: Option<String>,
    /// The last id of the previous page.
    pub after: Option<String>,
    pub tags: Option<TagFilter>,
    pub tags_raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TagFilter {
    All(Vec<String>),
    Any(Vec<String>),
}

impl TagFilter {
    pub fn matches(&self, entity_tags: Option<&Value>) -> bool {
        let tags: Vec<&str> = entity_tags
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match self {
            TagFilter::All(want) => want.iter().all(|t| tags.contains(&t.as_str())),
            TagFilter::Any(want) => want.iter().any(|t| tags.contains(&t.as_str())),
        }
    }
}

pub fn parse(query: &HashMap<String, String>) -> Result<PageRequest, ApiError> {
    let mut req = PageRequest {
        size: DEFAULT_SIZE,
        ..Default::default()
    };
    if let Some(raw) = query.get("size") {
        let n: f64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid_size("size must be a number"))?;
        if n.fract() != 0.0 || !(1.0..=MAX_SIZE as f64).contains(&n) {
            return Err(ApiError::invalid_size(
                "size must be an integer between 1 and 1000",
            ));
        }
        req.size = n as usize;
        req.size_given = Some(raw.clone());
    }
    if let Some(raw) = query.get("offset") {
        req.after = Some(decode_offset(raw)?);
    }
    if let Some(raw) = query.get("tags") {
        req.tags = Some(parse_tags(raw)?);
        req.tags_raw = Some(raw.clone());
    }
    Ok(req)
}

fn parse_tags(raw: &str) -> Result<TagFilter, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid_option("tags", "cannot be null"));
    }
    let has_and = raw.contains(',');
    let has_or = raw.contains('/');
    if has_and && has_or {
        return Err(ApiError::invalid_option("tags", "invalid filter syntax"));
    }
    let sep = if has_or { '/' } else { ',' };
    let tags: Vec<String> = raw.split(sep).map(str::to_owned).collect();
    if tags.iter().any(String::is_empty) {
        return Err(ApiError::invalid_option("tags", "invalid filter syntax"));
    }
    if tags.len() > 5 {
        return Err(ApiError::invalid_option(
            "tags",
            "cannot query more than 5 tags",
        ));
    }
    Ok(if has_or {
        TagFilter::Any(tags)
    } else {
        TagFilter::All(tags)
    })
}

/// Postgres offsets: unpadded base64 of the JSON array of the last primary key.
pub fn encode_offset(last_id: &str) -> String {
    let json = Value::Array(vec![Value::String(last_id.to_owned())]).to_string();
    STANDARD_NO_PAD.encode(json)
}

fn decode_offset(raw: &str) -> Result<String, ApiError> {
    let bytes = STANDARD_NO_PAD
        .decode(raw)
        .or_else(|_| STANDARD.decode(raw))
        .map_err(|_| ApiError::invalid_offset(raw, "bad base64 encoding"))?;
    let bad_json = || ApiError::invalid_offset(raw, "bad json encoding");
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad_json())?;
    value
        .get(0)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(bad_json)
}

/// Percent-encodes like `ngx.escape_uri` (everything but unreserved characters).
pub fn escape_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of ids out of an ordered id source, plus the offset when more remain.
pub fn page<'a, I>(ids: I, req: &PageRequest) -> (Vec<&'a str>, Option<String>)
where
    I: Iterator<Item = &'a str>,
{
    let mut out = Vec::with_capacity(req.size.min(1024));
    let mut more = false;
    for id in ids {
        if out.len() == req.size {
            more = true;
            break;
        }
        out.push(id);
    }
    let offset = if more {
        out.last().map(|id| encode_offset(id))
    } else {
        None
    };
    (out, offset)
}

/// The `next` link: top-level lists echo `tags` and `size`, nested lists do not.
pub fn next_link(base: &str, offset: &str, req: &PageRequest, nested: bool) -> String {
    let mut next = format!("{base}?offset={}", escape_uri(offset));
    if !nested {
        if let Some(tags) = &req.tags_raw {
            next.push_str(&format!("&tags={}", escape_uri(tags)));
        }
        if req.size_given.is_some() {
            next.push_str(&format!("&size={}", req.size));
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let o = encode_offset("6148d590-377a-491b-b31a-e160c60480a6");
        assert_eq!(o, "WyI2MTQ4ZDU5MC0zNzdhLTQ5MWItYjMxYS1lMTYwYzYwNDgwYTYiXQ");
        assert_eq!(
            decode_offset(&o).ok().as_deref(),
            Some("6148d590-377a-491b-b31a-e160c60480a6")
        );
        assert!(decode_offset("!!!").is_err());
    }

    #[test]
    fn tag_filters() {
        assert_eq!(
            parse_tags("a,b").ok(),
            Some(TagFilter::All(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            parse_tags("a/b").ok(),
            Some(TagFilter::Any(vec!["a".into(), "b".into()]))
        );
        assert!(parse_tags("a,b/c").is_err());
        assert!(parse_tags("").is_err());
    }
}
