//! Lua patterns, as Kong's schemas write them (`match`, `match_any`, `match_none`,
//! `match_all`), translated to byte regexes.
//!
//! Lua patterns work on bytes, `string.find`/`string.match` search anywhere unless
//! anchored with `^`, and `-` is a lazy `*`. Not supported (Kong's bundled schemas do not
//! use them): `%b`, `%f` and back-references; they are reported as errors.

use regex::bytes::Regex;

/// A compiled Lua pattern.
#[derive(Debug, Clone)]
pub struct LuaPattern {
    regex: Regex,
}

impl LuaPattern {
    pub fn new(pattern: &str) -> Result<LuaPattern, String> {
        let translated = translate(pattern)?;
        let regex = Regex::new(&translated).map_err(|e| format!("pattern '{pattern}': {e}"))?;
        Ok(LuaPattern { regex })
    }

    /// True when the pattern matches somewhere in `s` (Lua's `string.find(s, p)`).
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s.as_bytes())
    }
}

fn class(c: char) -> Option<&'static str> {
    Some(match c {
        'a' => "[A-Za-z]",
        'A' => "[^A-Za-z]",
        'c' => "[\\x00-\\x1f\\x7f]",
        'C' => "[^\\x00-\\x1f\\x7f]",
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'g' => "[\\x21-\\x7e]",
        'G' => "[^\\x21-\\x7e]",
        'l' => "[a-z]",
        'L' => "[^a-z]",
        'p' => "[!-/:-@\\[-`{-~]",
        'P' => "[^!-/:-@\\[-`{-~]",
        's' => "[\\t-\\r ]",
        'S' => "[^\\t-\\r ]",
        'u' => "[A-Z]",
        'U' => "[^A-Z]",
        'w' => "[A-Za-z0-9]",
        'W' => "[^A-Za-z0-9]",
        'x' => "[A-Fa-f0-9]",
        'X' => "[^A-Fa-f0-9]",
        _ => return None,
    })
}

/// The same class for use inside `[...]`, without the brackets.
fn class_inner(c: char) -> Option<&'static str> {
    Some(match c {
        'a' => "A-Za-z",
        'c' => "\\x00-\\x1f\\x7f",
        'd' => "0-9",
        'g' => "\\x21-\\x7e",
        'l' => "a-z",
        'p' => "!-/:-@\\[-`{-~",
        's' => "\\t-\\r ",
        'u' => "A-Z",
        'w' => "A-Za-z0-9",
        'x' => "A-Fa-f0-9",
        _ => return None,
    })
}

fn escape_byte(c: char) -> String {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| format!("\\x{b:02x}"))
        .collect()
}

fn translate(p: &str) -> Result<String, String> {
    // (?s): `.` is any byte; (?-u): classes and literals are bytes, as in Lua.
    let mut out = String::from("(?s-u)");
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let atom: String = match c {
            '^' if i == 0 => {
                out.push('^');
                i += 1;
                continue;
            }
            '$' if i == chars.len() - 1 => {
                out.push('$');
                i += 1;
                continue;
            }
            '%' => {
                let n = *chars
                    .get(i + 1)
                    .ok_or_else(|| format!("pattern '{p}' ends with '%'"))?;
                i += 1;
                match n {
                    'b' | 'f' => return Err(format!("pattern '{p}': %{n} is not supported")),
                    d if d.is_ascii_digit() => {
                        return Err(format!("pattern '{p}': back-references are not supported"));
                    }
                    n => class(n)
                        .map(str::to_owned)
                        .unwrap_or_else(|| escape_byte(n)),
                }
            }
            '[' => {
                let mut set = String::from("[");
                let mut j = i + 1;
                if chars.get(j) == Some(&'^') {
                    set.push('^');
                    j += 1;
                }
                let mut first = true;
                loop {
                    let Some(&d) = chars.get(j) else {
                        return Err(format!("pattern '{p}': unclosed '['"));
                    };
                    if d == ']' && !first {
                        break;
                    }
                    first = false;
                    if d == '%' {
                        let n = *chars
                            .get(j + 1)
                            .ok_or_else(|| format!("pattern '{p}': unclosed '['"))?;
                        match class_inner(n) {
                            Some(cls) => set.push_str(cls),
                            None if n.is_ascii_uppercase()
                                && class_inner(n.to_ascii_lowercase()).is_some() =>
                            {
                                return Err(format!(
                                    "pattern '{p}': negated class %{n} inside [] is not supported"
                                ));
                            }
                            None => set.push_str(&escape_byte(n)),
                        }
                        j += 2;
                    } else if chars.get(j + 1) == Some(&'-')
                        && chars.get(j + 2).is_some_and(|e| *e != ']')
                    {
                        set.push_str(&escape_byte(d));
                        set.push('-');
                        set.push_str(&escape_byte(chars[j + 2]));
                        j += 3;
                    } else {
                        set.push_str(&escape_byte(d));
                        j += 1;
                    }
                }
                set.push(']');
                i = j;
                set
            }
            '.' => ".".to_owned(),
            '(' | ')' => {
                // Captures only group in Lua; a non-capturing group is equivalent here.
                out.push_str(if c == '(' { "(?:" } else { ")" });
                i += 1;
                continue;
            }
            other => escape_byte(other),
        };
        i += 1;
        match chars.get(i) {
            Some('*') => {
                out.push_str(&atom);
                out.push('*');
                i += 1;
            }
            Some('+') => {
                out.push_str(&atom);
                out.push('+');
                i += 1;
            }
            Some('-') => {
                out.push_str(&atom);
                out.push_str("*?");
                i += 1;
            }
            Some('?') => {
                out.push_str(&atom);
                out.push('?');
                i += 1;
            }
            _ => out.push_str(&atom),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        LuaPattern::new(p).unwrap().is_match(s)
    }

    #[test]
    fn kong_patterns_behave_as_in_lua() {
        // typedefs.methods elements: "^%u+$"
        assert!(m("^%u+$", "GET"));
        assert!(!m("^%u+$", "get"));
        // vault prefix: "^[a-z][a-z%d-]-[a-z%d]+$"
        assert!(m("^[a-z][a-z%d-]-[a-z%d]+$", "my-env1"));
        assert!(!m("^[a-z][a-z%d-]-[a-z%d]+$", "my-"));
        assert!(!m("^[a-z][a-z%d-]-[a-z%d]+$", "1abc"));
        // unanchored search, escaped dot
        assert!(m("%.", "a.b"));
        assert!(!m("%.", "ab"));
        // a `-` right after a range is a literal, as in Lua
        assert!(m("^[a-zA-Z0-9-_]+$", "X-Request_Id"));
        assert!(!m("^[a-zA-Z0-9-_]+$", "X.Id"));
    }

    #[test]
    fn unsupported_constructs_are_errors_not_panics() {
        assert!(LuaPattern::new("%b()").is_err());
        assert!(LuaPattern::new("[abc").is_err());
        assert!(LuaPattern::new("abc%").is_err());
    }
}
