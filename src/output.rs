//! How the CLI writes to the terminal: the styles and the error line every command uses.

use anstyle::{AnsiColor, Style};

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const OK: Style = AnsiColor::Green.on_default().bold();

/// `error: message` on stderr (coloured when stderr is a terminal and NO_COLOR unset).
pub fn report_error(message: impl std::fmt::Display) {
    anstream::eprintln!("{ERROR}error{ERROR:#}: {message}");
}
