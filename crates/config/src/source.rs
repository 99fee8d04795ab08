//! The text of a desired-state file as error snippets show it: secrets masked, lines kept.

use std::ops::Range;

/// What a masked secret reads as in a snippet.
const MASK: &str = "(sensitive)";

/// A file's text with every secret value replaced by `(sensitive)`. Newlines inside a
/// secret are kept, so the line numbers of a snippet stay those of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    text: String,
    /// (range in the original text, range in `text`) of each masked value, in order.
    masked: Vec<(Range<usize>, Range<usize>)>,
}

impl Source {
    /// Masks `secrets` (byte ranges of `text`, in any order, possibly overlapping).
    pub fn masked(text: &str, mut secrets: Vec<Range<usize>>) -> Source {
        secrets.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(text.len());
        let mut masked = Vec::new();
        let mut cursor = 0;
        for r in secrets {
            let mut end = r.end.min(text.len());
            // A block scalar's span runs into the next line's indentation: keep that.
            if let Some(nl) = text.get(r.start..end).and_then(|s| s.rfind('\n'))
                && text[r.start + nl + 1..end].trim().is_empty()
            {
                end = r.start + nl + 1;
            }
            if r.start < cursor || !text.is_char_boundary(r.start) || !text.is_char_boundary(end) {
                continue;
            }
            out.push_str(&text[cursor..r.start]);
            let start = out.len();
            out.push_str(MASK);
            out.extend(text[r.start..end].chars().filter(|c| *c == '\n'));
            masked.push((r.start..end, start..out.len()));
            cursor = end;
        }
        out.push_str(&text[cursor..]);
        Source { text: out, masked }
    }

    /// A snippet-ready source for a file, from what loading learnt about it: the
    /// secret ranges, or `None` when it did not parse.
    pub(crate) fn from_load(text: &str, secrets: Option<Vec<Range<usize>>>) -> Source {
        match secrets {
            Some(secrets) => Source::masked(text, secrets),
            None => Source::masked_unparsed(text),
        }
    }

    /// Masks a file carl could not parse: nothing is known about its structure, so
    /// every value of a secret-looking key (`password: ...`, `key: ...`) and every PEM
    /// block is masked, line by line.
    pub fn masked_unparsed(text: &str) -> Source {
        let mut secrets = Vec::new();
        let mut in_pem = false;
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let start = offset;
            offset += line.len();
            if content.contains("-----BEGIN") {
                in_pem = true;
            }
            if in_pem {
                secrets.push(start..start + content.len());
                in_pem = !content.contains("-----END");
                continue;
            }
            if let Some(colon) = content.find(':') {
                let key = content[..colon]
                    .trim()
                    .trim_start_matches("- ")
                    .trim_matches(['"', '\'']);
                let secretish = carl_model::is_secret_name(key)
                    || ["key", "key_alt", "jwk", "secret"].contains(&key);
                let value = &content[colon + 1..];
                if secretish && !value.trim().is_empty() {
                    let lead = value.len() - value.trim_start().len();
                    secrets.push(start + colon + 1 + lead..start + content.len());
                }
            }
        }
        Source::masked(text, secrets)
    }

    /// The masked text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where byte `offset` of the original text is in the masked text (a position in
    /// a secret maps to the start of its mask).
    pub fn offset(&self, offset: usize) -> usize {
        let i = self.masked.partition_point(|(r, _)| r.start <= offset);
        let Some((original, masked)) = i.checked_sub(1).map(|i| &self.masked[i]) else {
            return offset.min(self.text.len());
        };
        if offset < original.end {
            masked.start
        } else {
            (masked.end + (offset - original.end)).min(self.text.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_and_keeps_lines_and_offsets() {
        let text = "a: 1\npassword: hunter2\nkey: |\n  -----BEGIN-----\n  abc\nb: oops\n";
        let pw = text.find("hunter2").unwrap();
        let pem = text.find("|").unwrap();
        let pem_end = text.find("b: oops").unwrap();
        let s = Source::masked(text, vec![pem..pem_end, pw..pw + 7]);
        assert!(!s.text().contains("hunter2") && !s.text().contains("abc"));
        assert_eq!(s.text().lines().count(), text.lines().count());
        let b = text.find("oops").unwrap();
        assert_eq!(&s.text()[s.offset(b)..s.offset(b) + 4], "oops");
        assert_eq!(
            &s.text()[s.offset(pw + 3)..s.offset(pw + 3) + MASK.len()],
            MASK
        );
        assert_eq!(s.offset(0), 0);
    }

    #[test]
    fn unparsed_files_mask_secret_looking_keys_and_pem_blocks() {
        let text = "consumers:\n- username: ann\n  password: hunter2\n  key: \"abc\"\n  cert: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n  : [\n";
        let s = Source::masked_unparsed(text);
        for secret in ["hunter2", "abc", "MIIB"] {
            assert!(!s.text().contains(secret), "{secret} in {}", s.text());
        }
        assert!(s.text().contains("username: ann"));
        assert_eq!(s.text().lines().count(), text.lines().count());
    }
}
