//! `${VAR}` and `${VAR:-default}` in string values.

/// Replaces `${NAME}` with the variable's value and `${NAME:-default}` with the value
/// or, when the variable is unset or empty, the default. `$${` is a literal `${`.
/// decK's `${{ env "DECK_NAME" }}` works too, so decK files load unchanged.
///
/// Returns the byte offset of the first unset variable without a default as the error,
/// with its name: an unset variable is never silently an empty string.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
            offset += i + 3;
            continue;
        }
        if let Some(deck) = after.strip_prefix("${{") {
            let Some(end) = deck.find("}}") else {
                return Err(InterpolationError {
                    offset: offset + i,
                    message: "unterminated '${{': expected '}}'".into(),
                });
            };
            let inner = deck[..end].trim();
            let name = inner
                .strip_prefix("env")
                .map(str::trim)
                .and_then(|n| n.strip_prefix('"'))
                .and_then(|n| n.strip_suffix('"'))
                .filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            let Some(name) = name else {
                return Err(InterpolationError {
                    offset: offset + i,
                    message: format!(
                        "unsupported template '${{{{ {inner} }}}}': expected ${{{{ env \"NAME\" }}}}"
                    ),
                });
            };
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(InterpolationError {
                        offset: offset + i,
                        message: format!("environment variable {name} is not set"),
                    });
                }
            }
            rest = &deck[end + 2..];
            offset += i + 3 + end + 2;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            offset += i + 1;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(InterpolationError {
                offset: offset + i,
                message: "unterminated '${': expected '}'".into(),
            });
        };
        let body = &body_start[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InterpolationError {
                offset: offset + i,
                message: format!(
                    "invalid variable name '{name}' in '${{{body}}}': expected letters, digits and '_'"
                ),
            });
        }
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(InterpolationError {
                    offset: offset + i,
                    message: format!(
                        "environment variable {name} is not set (set it, or write ${{{name}:-default}})"
                    ),
                });
            }
        }
        rest = &body_start[end + 1..];
        offset += i + 2 + end + 1;
    }
    out.push_str(rest);
    Ok(out)
}

/// An interpolation that cannot be done; `offset` is the byte offset of the `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub offset: usize,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "COLOR" => Some("green".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_variables_and_defaults() {
        assert_eq!(
            interpolate("api-${COLOR}.internal", &env).unwrap(),
            "api-green.internal"
        );
        assert_eq!(interpolate("${UNSET:-blue}", &env).unwrap(), "blue");
        assert_eq!(interpolate("${COLOR:-blue}", &env).unwrap(), "green");
        assert_eq!(interpolate("${EMPTY:-blue}", &env).unwrap(), "blue");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(
            interpolate("no vars, $5 and $x", &env).unwrap(),
            "no vars, $5 and $x"
        );
    }

    #[test]
    fn deck_env_templates_work_unchanged() {
        assert_eq!(
            interpolate(r#"api-${{ env "COLOR" }}.internal"#, &env).unwrap(),
            "api-green.internal"
        );
        assert_eq!(interpolate(r#"${{env "COLOR"}}"#, &env).unwrap(), "green");
        let e = interpolate(r#"x ${{ env "DECK_NOPE" }}"#, &env).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("DECK_NOPE is not set"));
        assert!(interpolate(r#"${{ lookup "x" }}"#, &env).is_err());
    }

    #[test]
    fn double_dollar_is_a_literal() {
        assert_eq!(interpolate("$${COLOR}", &env).unwrap(), "${COLOR}");
    }

    #[test]
    fn unset_variable_is_an_error_at_its_offset() {
        let e = interpolate("abc ${NOPE}", &env).unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("NOPE is not set"), "{}", e.message);
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(interpolate("${COLOR", &env).is_err());
        assert!(interpolate("${}", &env).is_err());
        assert!(interpolate("${A B}", &env).is_err());
    }
}
