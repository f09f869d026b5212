//! What every answer goes through, whatever the route: a panic becomes a 500 problem with an
//! error id (and the connection is kept), oversized request heads are refused with a problem
//! document, and JSON-API security headers are set. Rejection texts of serde are made fit for
//! clients here too (no Rust type names, no value echoed whole).

use std::any::Any;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use invite_core::domain::echo;
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::error::ApiError;

/// Longest request target (path and query) answered normally, in bytes; longer is a 414
/// problem. (hyper itself refuses a request line over 64 KiB with a bare 414.)
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most request header fields; more is a 431 problem (hyper refuses more than 100 bare).
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values together; more is a 431 problem.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest `detail` of a problem document, in characters.
pub const MAX_DETAIL_CHARS: usize = 300;

/// The layers every route gets (innermost first): head limits and security headers, then the
/// panic catcher, so that a panic anywhere in a handler is a 500 problem.
pub fn harden(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(axum::middleware::from_fn(guard))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// Refuses oversized request heads and sets the security headers of a JSON API.
pub async fn guard(request: Request, next: Next) -> Response {
    let authenticated = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = match head_problem(&request) {
        Some(problem) => problem.into_response(),
        None => next.run(request).await,
    };
    secure(&mut response, authenticated);
    response
}

fn head_problem(request: &Request) -> Option<ApiError> {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError::BadRequest {
            status: StatusCode::URI_TOO_LONG,
            detail: format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        });
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Some(ApiError::BadRequest {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!(
                "at most {MAX_HEADERS} header fields and {MAX_HEADER_BYTES} bytes of headers are accepted"
            ),
        });
    }
    None
}

/// `nosniff` and a restrictive CSP on every answer (unless the route set its own); `no-store` on answers to requests with
/// credentials (they hold one user's data).
fn secure(response: &mut Response, authenticated: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A route that set its own policy (the console's pages) keeps it.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    if authenticated {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A panic's answer: a 500 problem naming an error id, logged with the panic message.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let id = error_id();
    tracing::error!(error.id = %id, panic = %echo(message), "request failed: handler panicked ({id})");
    let mut response = ApiError::Panic { error_id: id }.into_response();
    secure(&mut response, true);
    response
}

/// 16 random hex digits: what a client quotes and an operator finds in the log.
fn error_id() -> String {
    use rand::{RngCore, SeedableRng};
    format!("{:016x}", rand::rngs::StdRng::from_os_rng().next_u64())
}

/// A serde rejection text as a client may see it: Rust type names replaced by what they mean
/// in JSON, and at most [`MAX_DETAIL_CHARS`] characters (a refused value is not echoed whole).
pub fn public_detail(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let is_name = |w: &str| {
        let name = w.trim_end_matches([',', ':', '.', ';']);
        name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    // The punctuation after a type's name, kept.
    let tail = |w: &str| w[w.trim_end_matches([',', ':', '.', ';']).len()..].to_owned();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        match rest {
            // serde: "did not match any variant of untagged enum TargetInput"
            ["variant", "of", "untagged", "enum", name, ..] if is_name(name) => {
                out.push(format!("accepted form{}", tail(name)));
                i += 5;
            }
            ["struct", name, ..] if is_name(name) => {
                out.push(format!("a JSON object{}", tail(name)));
                i += 2;
            }
            ["enum", name, ..] if is_name(name) => {
                out.push(format!("one of the documented values{}", tail(name)));
                i += 2;
            }
            [word, ..] => {
                out.push((*word).to_owned());
                i += 1;
            }
            [] => break,
        }
    }
    clip(&out.join(" "), MAX_DETAIL_CHARS)
}

/// `text` cut to `max` characters, with `…` when something was cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_panic_answer_names_the_error_id_that_is_logged() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let response = tracing::subscriber::with_default(subscriber, || {
            panic_response(Box::new(format!("secret {}", "x".repeat(500))))
        });
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = problem["error_id"].as_str().unwrap();
        let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("ERROR"), "{log}");
        assert!(log.contains(id), "the id {id} is not in the log: {log}");
        // The panic message is logged (cut), never answered.
        assert!(log.contains("secret"));
        assert!(log.len() < 1000, "{log}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }

    #[test]
    fn rust_type_names_do_not_reach_clients() {
        let d = public_detail(
            "Failed to deserialize the JSON body into the target type: invalid type: string \"x\", expected struct CreateTaskBody at line 1 column 3",
        );
        assert!(
            !d.contains("CreateTaskBody") && !d.contains("struct"),
            "{d}"
        );
        assert!(d.contains("expected a JSON object at line 1"), "{d}");
        let d = public_detail(
            "targets[0]: data did not match any variant of untagged enum TargetInput at line 1 column 9",
        );
        assert_eq!(
            d,
            "targets[0]: data did not match any accepted form at line 1 column 9"
        );
        let d = public_detail("action: invalid type: integer `1`, expected enum ActionWire");
        assert_eq!(
            d,
            "action: invalid type: integer `1`, expected one of the documented values"
        );
        let long = format!("invalid type: string \"{}\"", "a".repeat(5000));
        assert_eq!(public_detail(&long).chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
