//! `carl ping` and `carl dump`: what is at the address, and everything it holds.

use std::io::{IsTerminal, Write};

use crate::output::{OK, WARN, report_error};
use carl_config::dump::{DumpOptions, dump as render_dump};
use carl_model::Kind;

use crate::cli::{DumpArgs, DumpFormat, Format, GlobalArgs, PingArgs};
use crate::connect::client;
use crate::{EXIT_ERROR, EXIT_OK};

pub async fn ping(global: &GlobalArgs, args: &PingArgs) -> u8 {
    let client = match client(global) {
        Ok(c) => c,
        Err(e) => {
            report_error(e);
            return EXIT_ERROR;
        }
    };
    let ping = match client.ping().await {
        Ok(p) => p,
        Err(e) => {
            report_error(format!(
                "cannot use the Admin API at {}: {e}",
                client.addr()
            ));
            return EXIT_ERROR;
        }
    };
    if args.format == Format::Json {
        match serde_json::to_string_pretty(&ping) {
            Ok(text) => anstream::println!("{text}"),
            Err(e) => {
                report_error(e);
                return EXIT_ERROR;
            }
        }
        return EXIT_OK;
    }
    let mode = if ping.db_less {
        "DB-less (database = off): carl applies through POST /config".to_owned()
    } else {
        format!("database = {}", ping.database)
    };
    anstream::println!("{OK}reachable{OK:#}: {}", ping.address);
    anstream::println!("  Kong       {} ({})", ping.version, ping.edition);
    anstream::println!("  mode       {mode}");
    anstream::println!("  latency    {:.1} ms", ping.latency.as_secs_f64() * 1000.0);
    match &ping.tls {
        None => anstream::println!("  TLS        none (plain HTTP)"),
        Some(tls) => {
            anstream::println!("  TLS        {} {}", tls.protocol, tls.cipher);
            anstream::println!(
                "  server     {} (issued by {})",
                tls.peer_subject,
                tls.peer_issuer
            );
            anstream::println!(
                "  client     {}",
                if tls.client_certificate {
                    "certificate presented and accepted"
                } else {
                    "no client certificate"
                }
            );
        }
    }
    EXIT_OK
}

pub async fn dump(global: &GlobalArgs, args: &DumpArgs) -> u8 {
    let client = match client(global) {
        Ok(c) => c,
        Err(e) => {
            report_error(e);
            return EXIT_ERROR;
        }
    };
    let mut tags = args.select_tags.clone();
    tags.retain(|t| !t.is_empty());
    tags.sort();
    tags.dedup();
    let live = match client.read_state_tagged(Kind::ALL, &tags).await {
        Ok(l) => l,
        Err(e) => {
            report_error(format!("reading the gateway: {e}"));
            return EXIT_ERROR;
        }
    };
    let text = render_dump(
        &live,
        &DumpOptions {
            with_id: args.with_id,
            redact_secrets: args.redact_secrets,
            select_tags: tags,
            json: args.format == DumpFormat::Json,
        },
    );
    let count: usize = live.entities.values().map(Vec::len).sum();
    match &args.output {
        Some(path) => {
            if let Err(e) = write_private(path, text.as_bytes()) {
                report_error(format!("{}: {e}", path.display()));
                return EXIT_ERROR;
            }
            anstream::eprintln!("{count} entities written to {}", path.display());
        }
        None => {
            if std::io::stdout().is_terminal() && !args.redact_secrets {
                anstream::eprintln!(
                    "{WARN}warning{WARN:#}: the dump includes secrets (credential keys, passwords, \
                     private keys); -o FILE writes them to a file only you can read, \
                     --redact-secrets leaves them out"
                );
            }
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return EXIT_ERROR;
            }
        }
    }
    EXIT_OK
}

/// Writes `bytes` to `path`, readable by the owner only: a dump is a backup with secrets.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
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
