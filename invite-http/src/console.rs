//! The web console: a page at `/` that shows and steers the caller's campaigns in a browser,
//! over the REST API with the same bearer token (it has no authority of its own). Plain HTML,
//! CSS and ES modules compiled into the binary — no build step, nothing fetched from elsewhere,
//! so it works offline. The page takes its token from `#token=…` in the address (then removes
//! it from the address bar and keeps it in the tab's `sessionStorage`), else from a field.
//!
//! Its answers carry a content security policy that allows only the console's own scripts,
//! styles and API calls (no inline script, no framing).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// The policy of the console's answers: its own files and API only.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Where the console's files are served.
pub const ASSETS: &str = "/console";

/// The console's files: path under [`ASSETS`], media type, contents.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/charts.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../console/console.css"),
    ),
];

const INDEX: &str = include_str!("../console/index.html");

/// The console's routes: the page at `/` and its files under [`ASSETS`].
pub fn router() -> Router<AppState> {
    let mut router = Router::new().route(
        "/",
        get(|| async { page("text/html; charset=utf-8", INDEX) }),
    );
    for &(name, media, body) in FILES {
        router = router.route(
            &format!("{ASSETS}/{name}"),
            get(move || async move { page(media, body) }),
        );
    }
    router
}

/// One of the console's files with its headers: the console's policy (the edge keeps a policy
/// already set), no referrer, no caching across versions of the binary.
fn page(media: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The address that signs the console in as the holder of `token`: `http://HOST:PORT/#token=…`
/// (a wildcard bind address is shown as `127.0.0.1`). The token travels in the fragment, which
/// browsers never send to the server.
pub fn link(addr: std::net::SocketAddr, token: &str) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let host = std::net::SocketAddr::new(ip, addr.port());
    format!("http://{host}/#token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_names_a_reachable_host_and_carries_the_token_in_the_fragment() {
        let addr: std::net::SocketAddr = "0.0.0.0:8003".parse().unwrap();
        assert_eq!(
            link(addr, "abc.def"),
            "http://127.0.0.1:8003/#token=abc.def"
        );
        let addr: std::net::SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(link(addr, "t"), "http://[::1]:9000/#token=t");
    }

    #[test]
    fn every_script_the_page_loads_is_served() {
        for script in INDEX
            .split("src=\"")
            .skip(1)
            .chain(INDEX.split("href=\"").skip(1))
        {
            let path = &script[..script.find('"').unwrap()];
            if !path.starts_with(ASSETS) {
                continue;
            }
            let name = &path[ASSETS.len() + 1..];
            assert!(FILES.iter().any(|f| f.0 == name), "{path} is not served");
        }
        // Modules import each other by relative path.
        for (_, _, body) in FILES {
            for import in body.split("from './").skip(1) {
                let name = &import[..import.find('\'').unwrap()];
                assert!(FILES.iter().any(|f| f.0 == name), "{name} is not served");
            }
        }
    }
}
