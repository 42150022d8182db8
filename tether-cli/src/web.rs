//! `tether serve --web ADDR`: the service for JavaScript and the browser.
//!
//! The Cap'n Web endpoint at `ADDR/capnweb` ([`tether::capnweb`]), and at
//! `ADDR/` a console page that explores the root over it: members with
//! signatures and docs, calls with JSON arguments, object results to
//! follow, callbacks shown as they are called. The page, its script and
//! the `capnweb` package it runs on (0.12.0's browser build, vendored
//! with its license in `web/vendor/`) are compiled into the binary: no
//! CDN, nothing fetched.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tether::capnweb::CapnWeb;
use tether::NetRef;

const INDEX: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/console.js");
const STYLE: &str = include_str!("../web/console.css");
/// The `capnweb` npm package's `dist/index.js`, unchanged.
pub const CAPNWEB: &str = include_str!("../web/vendor/capnweb.js");
const CAPNWEB_LICENSE: &str = include_str!("../web/vendor/capnweb-LICENSE.txt");

/// The console's routes beside the endpoint for `root`.
pub fn app(root: NetRef) -> Router {
    let file = |body: &'static str, kind: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, kind)], body).into_response() })
    };
    CapnWeb::from_ref(root)
        .router()
        .route("/", file(INDEX, "text/html; charset=utf-8"))
        .route(
            "/console.js",
            file(SCRIPT, "text/javascript; charset=utf-8"),
        )
        .route("/console.css", file(STYLE, "text/css; charset=utf-8"))
        .route(
            "/capnweb.js",
            file(CAPNWEB, "text/javascript; charset=utf-8"),
        )
        .route(
            "/capnweb-LICENSE.txt",
            file(CAPNWEB_LICENSE, "text/plain; charset=utf-8"),
        )
}
