//! How the CLI writes to the terminal: the styles and the error line every command uses.

use std::io::Write;

use anstyle::{AnsiColor, Style};

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const OK: Style = AnsiColor::Green.on_default().bold();

/// `error: message` on stderr (coloured when stderr is a terminal and NO_COLOR unset).
pub fn report_error(message: impl std::fmt::Display) {
    anstream::eprintln!("{ERROR}error{ERROR:#}: {message}");
}

/// Writes `bytes` to `path`, readable by the owner only: a dump is a backup with secrets.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its mode on open: make it private too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)
    }
}
