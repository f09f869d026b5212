//! End-to-end tests of the REST API over real HTTP.

mod accounts;
mod auth;
mod edges;
mod helpers;
mod hostile;
mod import;
mod isolation;
mod lifecycle;
mod limits;
mod openapi;
mod platform;
mod report;
mod transitions;
mod vault;
