//! An Admin API that answers badly: truncated JSON, wrong types, pages longer than
//! asked, a `next` that loops, answers too large to hold, arbitrary bytes. Each is a
//! clear error naming the path; none panics, loops or grows memory without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use carl_admin_client::{AdminClient, ClientConfig, Error, RetryConfig};
use carl_model::Kind;

/// Answers by path and query; what it was not told is an empty last page.
#[derive(Default)]
struct Answers {
    bodies: Mutex<HashMap<String, Body>>,
    /// Bodies made fresh for every request (the loop tests read them more than once).
    fixed: Mutex<HashMap<String, Vec<u8>>>,
    requests: AtomicUsize,
}

async fn answer(State(a): State<Arc<Answers>>, req: Request) -> Response {
    a.requests.fetch_add(1, Ordering::SeqCst);
    let uri = req.uri().to_string();
    let once = a.bodies.lock().unwrap().remove(&uri);
    let body = once.unwrap_or_else(|| match a.fixed.lock().unwrap().get(&uri) {
        Some(bytes) => Body::from(bytes.clone()),
        None => Body::from(r#"{"data":[],"next":null}"#),
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

struct Server {
    answers: Arc<Answers>,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answers = Arc::new(Answers::default());
        let app = Router::new().fallback(answer).with_state(answers.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            answers,
            url,
            runtime,
        }
    }

    fn fix(&self, uri: &str, body: impl Into<Vec<u8>>) {
        self.answers
            .fixed
            .lock()
            .unwrap()
            .insert(uri.to_owned(), body.into());
    }

    fn client(&self, max_response_bytes: usize) -> AdminClient {
        AdminClient::new(&ClientConfig {
            addr: self.url.clone(),
            retry: RetryConfig {
                attempts: 1,
                ..RetryConfig::default()
            },
            max_response_bytes,
            ..ClientConfig::default()
        })
        .unwrap()
    }

    /// Reads the services, as a plan does.
    fn read_services(&self) -> Result<usize, Box<Error>> {
        let client = self.client(carl_admin_client::MAX_RESPONSE_BYTES);
        self.runtime
            .block_on(client.read_state(&[Kind::Service]))
            .map(|live| live.len())
            .map_err(Box::new)
    }
}

const FIRST: &str = "/services?size=1000";

fn decode_error(result: Result<usize, Box<Error>>) -> String {
    match result {
        Err(e) if matches!(*e, Error::Decode { .. }) => e.to_string(),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn truncated_json_and_wrong_types_are_clear_errors() {
    let server = Server::start();
    for body in [
        r#"{"data":[{"id":"a","name":"x""#,
        r#"{"data":{}}"#,
        r#"{"data":[1,2]}"#,
        r#"{"data":[],"next":5}"#,
        r#"[]"#,
        r#"null"#,
        "<html>502 Bad Gateway</html>",
        "",
    ] {
        server.fix(FIRST, body);
        let message = decode_error(server.read_services());
        assert!(
            message.starts_with("/services?size=1000: unexpected response: not a page of services"),
            "{body}: {message}"
        );
    }
}

#[test]
fn a_page_longer_than_asked_for_is_refused() {
    let server = Server::start();
    let entity = |i: usize| format!(r#"{{"id":"{i}","name":"s{i}"}}"#);
    let page = |n: usize| {
        let data: Vec<String> = (0..n).map(entity).collect();
        format!(r#"{{"data":[{}],"next":null}}"#, data.join(","))
    };
    server.fix(FIRST, page(1000));
    assert_eq!(server.read_services().unwrap(), 1000);
    server.fix(FIRST, page(1001));
    let message = decode_error(server.read_services());
    assert!(
        message.contains("a page of 1001 services, more than the 1000 asked for"),
        "{message}"
    );
}

#[test]
fn a_next_that_loops_is_refused_after_one_round() {
    let server = Server::start();
    // A → B → A: the third page would be one already read.
    server.fix(FIRST, r#"{"data":[],"next":"/services?offset=A"}"#);
    server.fix(
        "/services?offset=A",
        r#"{"data":[],"next":"/services?offset=B"}"#,
    );
    server.fix(
        "/services?offset=B",
        r#"{"data":[],"next":"/services?offset=A"}"#,
    );
    let message = decode_error(server.read_services());
    assert!(message.contains("the pages of services loop"), "{message}");
    assert!(message.starts_with("/services?offset=A:"), "{message}");
    assert_eq!(server.answers.requests.load(Ordering::SeqCst), 3);
    // A page pointing to itself.
    server.fix(FIRST, r#"{"data":[],"next":"/services?offset=C"}"#);
    server.fix(
        "/services?offset=C",
        r#"{"data":[],"next":"/services?offset=C"}"#,
    );
    let message = decode_error(server.read_services());
    assert!(message.contains("loop"), "{message}");
}

#[test]
fn an_answer_larger_than_the_limit_is_refused_unread() {
    let server = Server::start();
    let mib = 1 << 20;
    let huge = format!(
        r#"{{"data":[],"next":null,"pad":"{}"}}"#,
        "x".repeat(5 * mib)
    );
    // Announced by Content-Length.
    server.fix(FIRST, huge.clone());
    let client = server.client(mib);
    let err = server.runtime.block_on(client.read_state(&[Kind::Service]));
    let message = decode_error(err.map(|l| l.len()).map_err(Box::new));
    assert!(
        message.contains("more than the 1 MiB carl reads"),
        "{message}"
    );
    // Streamed without a length: refused once the limit is passed, not at the end.
    let chunks = (0..5 * 16).map(move |_| Ok::<_, std::io::Error>(vec![b' '; mib / 16]));
    server.answers.bodies.lock().unwrap().insert(
        FIRST.into(),
        Body::from_stream(futures_util::stream::iter(chunks)),
    );
    let err = server.runtime.block_on(client.read_state(&[Kind::Service]));
    let message = decode_error(err.map(|l| l.len()).map_err(Box::new));
    assert!(
        message.contains("over 1") && message.contains("more than the 1 MiB"),
        "{message}"
    );
    // The same answer is fine under the default limit.
    server.fix(FIRST, huge);
    assert_eq!(server.read_services().unwrap(), 0);
}

#[test]
fn arbitrary_bytes_as_a_page_never_panic() {
    use proptest::prelude::*;
    let server = Server::start();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    });
    let page_like = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        // JSON-shaped: the parser gets past the first byte.
        "\\{\"data\":\\[(\\{\"id\":\"[a-z0-9]{0,4}\"(,\"[a-z]{1,5}\":(1|\"x\"|null|\\[\\]|\\{\\}))*\\},?){0,3}\\]?(,\"next\":(null|\"/services\\?offset=[a-z]{0,3}\"|3))?\\}?"
            .prop_map(String::into_bytes),
    ];
    runner
        .run(&page_like, |bytes| {
            server.fix(FIRST, bytes);
            // Ok or an error, never a panic.
            let _ = server.read_services();
            Ok(())
        })
        .unwrap();
}
