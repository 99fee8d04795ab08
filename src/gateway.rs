//! `carl ping` and `carl dump`: what is at the address, and everything it holds.

use std::io::{IsTerminal, Write};

use crate::output::{OK, WARN, report_error};
use carl_admin_client::{SUPPORTED, Support};
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
    let support = match ping.support {
        Support::Full => format!("{OK}full{OK:#} (plan, apply, check, dump)"),
        Support::ReadOnly => {
            format!("{WARN}reading only{WARN:#} (ping, dump); carl plans and applies for Kong 3.x")
        }
        Support::Newer => format!("{WARN}newer than carl knows{WARN:#}: check plans carefully"),
        Support::Unsupported => format!("{WARN}not supported{WARN:#}: carl works with {SUPPORTED}"),
        Support::Unknown => format!("{WARN}unknown version{WARN:#}: treated as Kong 3.x"),
    };
    anstream::println!("  support    {support}");
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
    let gateway = match client.gateway().await {
        Ok(g) => g,
        Err(e) => {
            report_error(format!("reading the gateway: {e}"));
            return EXIT_ERROR;
        }
    };
    if let Err(why) = gateway.check_readable() {
        report_error(why);
        return EXIT_ERROR;
    }
    if let Some(w) = gateway.warning() {
        anstream::eprintln!("{WARN}warning{WARN:#}: {w}");
    }
    let mut live = match client.read_state_tagged(Kind::ALL, &tags).await {
        Ok(l) => l,
        Err(e) => {
            report_error(format!("reading the gateway: {e}"));
            return EXIT_ERROR;
        }
    };
    if gateway.effective_version().has_legacy_route_paths() {
        let changed = migrate_route_paths(&mut live);
        anstream::eprintln!(
            "note: Kong {} route paths written in 3.0 form, as Kong's 3.0 migration rewrites them              ({changed} changed: regexes now start with `~`)",
            gateway.version_text
        );
    }
    let text = render_dump(
        &live,
        &DumpOptions {
            with_id: args.with_id,
            redact_secrets: args.redact_secrets,
            select_tags: tags,
            json: args.format == DumpFormat::Json,
        },
    );
    let count = live.len();
    match &args.output {
        Some(path) => {
            if let Err(e) = crate::output::write_private(path, text.as_bytes()) {
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

/// Rewrites a Kong 2.x gateway's route paths as Kong 3.0 reads them; returns how many
/// paths changed.
fn migrate_route_paths(live: &mut carl_model::LiveState) -> usize {
    let mut changed = 0;
    let mut routes = live.of(Kind::Route);
    for route in &mut routes {
        if let Some(serde_json::Value::Array(paths)) = route.get_mut("paths") {
            for path in paths.iter_mut() {
                if let Some(old) = path.as_str() {
                    let new = carl_model::legacy::migrate_route_path(old);
                    if new != old {
                        changed += 1;
                        *path = serde_json::Value::String(new);
                    }
                }
            }
        }
    }
    if changed > 0 {
        live.set(Kind::Route, routes);
    }
    changed
}
