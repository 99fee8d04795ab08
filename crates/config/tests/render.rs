//! Errors print as a compiler prints them: location, message, the lines around it with
//! every secret masked, and at most `max` of them with a count of the rest.

use carl_config::{RenderOptions, load_str};

const PEM_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\n    TOPSECRETKEYMATERIAL\n    -----END PRIVATE KEY-----";

fn render(text: &str, max: usize) -> String {
    let env = |name: &str| (name == "REDIS_PW").then(|| "redis-env-secret".to_owned());
    load_str("gw.yaml", text, &env)
        .unwrap_err()
        .render(RenderOptions {
            max,
            color: false,
            snippets: true,
        })
}

#[test]
fn snippets_never_show_secrets_next_to_an_error() {
    let text = r#"_format_version: "3.0"
consumers:
- username: ann
  basicauth_credentials:
  - username: ann
    password: hunter2-basic
    tagz: [a]
  keyauth_credentials:
  - key: keyauth-secret-value
    tagz: [a]
  hmacauth_credentials:
  - {username: ann-h, secret: hmac-secret-value, tagz: [a]}
  plugins:
  - name: rate-limiting
    config: {minute: 5, policy: redis, redis: {host: r, password: redis-file-secret}, secnd: 1}
  - name: my-custom-auth
    config:
      client_secret: custom-client-secret
      nope: [1
"#;
    // The last line breaks the YAML: nothing is known of the structure, and the
    // fallback masking still hides every secret-looking value.
    let broken = render(text, 50);
    let fixed = text.replace("nope: [1", "nope: 1");
    let rendered = render(&fixed, 50);
    for out in [&broken, &rendered] {
        for secret in [
            "hunter2-basic",
            "keyauth-secret-value",
            "hmac-secret-value",
            "redis-file-secret",
            "custom-client-secret",
        ] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        assert!(out.contains("(sensitive)"), "{out}");
    }
    assert!(
        rendered.contains("gw.yaml:7:5: basic-auth credential: unknown field `tagz`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("username: ann"),
        "non-secret lines stay readable:\n{rendered}"
    );
}

#[test]
fn private_keys_in_block_scalars_are_masked_and_line_numbers_stay_true() {
    let text = format!(
        "_format_version: \"3.0\"\ncertificates:\n- cert: not a certificate\n  key: |\n    {PEM_KEY}\n  snis: [{{name: \"bad sni\"}}]\n"
    );
    let out = render(&text, 50);
    assert!(!out.contains("TOPSECRET"), "{out}");
    // The SNI error is on line 8, after the 3-line key: the snippet shows line 8 as it is.
    assert!(out.contains("gw.yaml:8:17: SNI.name"), "{out}");
    assert!(out.contains(" 8 │   snis: [{name: \"bad sni\"}]"), "{out}");
}

#[test]
fn errors_are_capped_with_a_count_of_the_rest() {
    let mut text = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..60 {
        text.push_str(&format!("- name: s{i}\n  host: h\n  port: {}\n", 70000 + i));
    }
    let out = render(&text, 50);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("error: ")).count(),
        50,
        "{out}"
    );
    assert!(out.contains("… and 10 more problems not shown"), "{out}");
    let all = load_str("gw.yaml", &text, &|_| None).unwrap_err();
    assert_eq!(
        all.diagnostics.len(),
        60,
        "every problem is found, only printing is capped"
    );
}

#[test]
fn a_rendered_error_reads_like_a_compiler_error() {
    let out = render(
        "_format_version: \"3.0\"\nservices:\n- name: orders\n  host: orders.internal\n  port: 99999\n",
        50,
    );
    insta::assert_snapshot!(out, @r"
    error: gw.yaml:5:9: service.port: value should be between 0 and 65535
       ╭─[gw.yaml:5:9]
     4 │   host: orders.internal
     5 │   port: 99999
       ·         ─────
       ╰────
    ");
}
