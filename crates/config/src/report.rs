//! Renders desired-state errors as a compiler does: `error: file:line:col: message`,
//! then the lines around it (miette), secrets masked, at most a given number of them.

use std::fmt::Write as _;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

use crate::{Diagnostic, LoadError};

/// How [`LoadError::render`] prints.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Print at most this many problems, then how many more there are.
    pub max: usize,
    /// ANSI colours (the caller decides: terminal, `NO_COLOR`).
    pub color: bool,
    /// Show the lines around each problem.
    pub snippets: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            max: 50,
            color: false,
            snippets: true,
        }
    }
}

impl LoadError {
    /// Every problem (up to `options.max`) as text for a terminal or a CI log, each with
    /// its source snippet, then a count of those left out.
    pub fn render(&self, options: RenderOptions) -> String {
        let mut out = String::new();
        let (red, bold, reset) = if options.color {
            ("\x1b[1;31m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        let theme = if options.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .with_width(100);
        for d in self.diagnostics.iter().take(options.max) {
            let _ = writeln!(out, "{red}error{reset}{bold}: {d}{reset}");
            if options.snippets
                && let Some(snippet) = self.snippet(&handler, d)
            {
                out.push_str(&snippet);
            }
        }
        let rest = self.diagnostics.len().saturating_sub(options.max);
        if rest > 0 {
            let _ = writeln!(
                out,
                "… and {rest} more problem{} not shown (the first {} are above; raise --max-errors to see more)",
                if rest == 1 { "" } else { "s" },
                options.max
            );
        }
        out
    }

    /// miette's snippet of the lines around `d`, without its header line.
    fn snippet(&self, handler: &GraphicalReportHandler, d: &Diagnostic) -> Option<String> {
        let location = d.location.as_ref()?;
        let source = self.sources.get(&location.file)?;
        let text = source.text();
        let start = source.offset(location.offset);
        let len = text[start..].split('\n').next().map_or(0, |line| {
            line.trim_end().chars().take(60).map(char::len_utf8).sum()
        });
        let diagnostic = Snippet {
            inner: MietteDiagnostic::new(d.message.clone()).with_label(LabeledSpan::underline(
                SourceSpan::from((start, len.max(1))),
            )),
            source: Named {
                name: &location.file,
                text,
            },
        };
        let mut rendered = String::new();
        handler.render_report(&mut rendered, &diagnostic).ok()?;
        // Drop miette's own header (the message, printed above with its location).
        let body: Vec<&str> = rendered
            .lines()
            .skip_while(|l| !l.contains("─[") && !l.contains("-["))
            .collect();
        (!body.is_empty()).then(|| body.join("\n") + "\n")
    }
}

/// A diagnostic carrying borrowed source text, so rendering never copies a file.
#[derive(Debug)]
struct Snippet<'a> {
    inner: MietteDiagnostic,
    source: Named<'a>,
}

impl std::fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for Snippet<'_> {}

impl miette::Diagnostic for Snippet<'_> {
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
}

/// A file's masked text with its name, for the snippet header.
#[derive(Debug)]
struct Named<'a> {
    name: &'a str,
    text: &'a str,
}

impl SourceCode for Named<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.to_owned(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}
