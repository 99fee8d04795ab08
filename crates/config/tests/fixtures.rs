//! The fixture corpus under `tests/fixtures/`: every good file loads, every wrong file
//! gives exactly the errors in its snapshot (`tests/snapshots/fixtures__*.snap`).
//!
//! A wrong fixture is a file or a directory of files loaded together. To add one, drop
//! it in `tests/fixtures/bad/` and run `INSTA_UPDATE=always cargo test -p carl-config
//! --test fixtures`, then read the new snapshot before committing it.

use std::path::{Path, PathBuf};

use carl_config::{DesiredState, RenderOptions, load_paths};
use carl_model::Kind;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The variables the fixtures use; anything else is unset.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "ACTIVE_COLOR" => "blue",
        "ORDERS_PORT_WORD" => "eighty",
        "DECK_OWNER" => "web-team",
        "SHOP_API_KEY" => "shop-key-from-env",
        "SHOP_PASSWORD" => "shop-password-from-env",
        "SHOP_HMAC_SECRET" => "shop-hmac-from-env",
        "SHOP_JWT_SECRET" => "shop-jwt-from-env",
        _ => return None,
    };
    Some(value.to_owned())
}

fn entries(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
}

fn load(path: &Path) -> Result<DesiredState, carl_config::LoadError> {
    load_paths(&[path.to_path_buf()], &env)
}

fn count(state: &DesiredState, kind: Kind) -> usize {
    state.entities.iter().filter(|e| e.kind == kind).count()
}

#[test]
fn every_good_fixture_loads() {
    let good = entries("good");
    assert!(good.len() >= 7, "{good:?}");
    for path in good {
        if let Err(e) = load(&path) {
            panic!("{} must load:\n{e}", path.display());
        }
    }
}

#[test]
fn the_good_fixtures_cover_every_kind_in_both_forms() {
    let nested = load(&fixtures().join("good/every-kind-nested.yaml")).unwrap();
    let flat = load(&fixtures().join("good/every-kind-flat.yaml")).unwrap();
    for kind in Kind::ALL {
        assert!(
            count(&nested, *kind) + count(&flat, *kind) > 0,
            "no {kind} in the fixtures"
        );
    }
    // Children with a parent appear nested in one file and flat in the other.
    for kind in [
        Kind::Sni,
        Kind::Key,
        Kind::Route,
        Kind::Target,
        Kind::Plugin,
        Kind::KeyAuth,
        Kind::BasicAuth,
        Kind::Acl,
    ] {
        assert!(count(&nested, kind) > 0, "no nested {kind}");
        assert!(count(&flat, kind) > 0, "no flat {kind}");
    }
}

#[test]
fn fixtures_read_values_as_kong_does() {
    let state = load(&fixtures().join("good/yaml11-and-variables.yaml")).unwrap();
    let service = |name: &str| {
        state
            .entities
            .iter()
            .find(|e| e.kind == Kind::Service && e.name() == Some(name))
            .unwrap_or_else(|| panic!("service {name}"))
    };
    let legacy = service("legacy");
    assert_eq!(
        legacy.fields.get("enabled").unwrap(),
        true,
        "yes is true in YAML 1.1"
    );
    assert_eq!(
        legacy.fields.get("port").unwrap(),
        8080,
        "${{VAR:-default}} takes the field's type"
    );
    assert_eq!(legacy.fields.get("retries").unwrap(), 2, "_info.defaults");
    assert_eq!(
        service("fileserver").fields.get("connect_timeout").unwrap(),
        493,
        "0755 is octal"
    );
    let route = state
        .entities
        .iter()
        .find(|e| e.kind == Kind::Route)
        .unwrap();
    assert_eq!(
        route.fields.get("strip_path").unwrap(),
        false,
        "off is false"
    );
    assert_eq!(
        route.fields.get("tags").unwrap().clone(),
        serde_json::json!(["cost-center:${not-a-variable}", "owner:web-team"])
    );
    let kic = load(&fixtures().join("good/kic-generated.yaml")).unwrap();
    assert_eq!(count(&kic, Kind::Target), 2);
    let split = load(&fixtures().join("good/split")).unwrap();
    assert_eq!(
        count(&split, Kind::Plugin),
        2,
        "a directory loads as one gateway"
    );
}

#[test]
fn every_bad_fixture_gives_its_exact_errors() {
    let bad = entries("bad");
    assert!(bad.len() >= 25, "at least 25 wrong files: {}", bad.len());
    let root = format!("{}/", fixtures().display());
    for path in bad {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let err = match load(&path) {
            Ok(_) => panic!("{name} must not load"),
            Err(e) => e,
        };
        for d in &err.diagnostics {
            assert!(
                d.location.is_some()
                    || name.contains("utf8")
                    || name.contains("binary")
                    || name == "empty.yaml",
                "{name}: every error has a line and column: {d}"
            );
        }
        let rendered = err
            .render(RenderOptions {
                max: 50,
                color: false,
                snippets: true,
            })
            .replace(&root, "");
        insta::assert_snapshot!(name.replace('.', "_"), rendered);
    }
}
