//! The I/O policy shared by the platform clients: a reqwest client with timeouts and no
//! redirects, the service token on every request, a bounded answer size, and a bounded retry
//! with exponential backoff for what may pass (5xx, 429, timeouts, broken connections).
//! Other answers are final at once: 404 → [`Error::NotFound`], 401/403 →
//! [`Error::Unauthorized`], any other 4xx → [`Error::Rejected`].

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::Clock;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::auth::{ServiceAuth, ServiceToken};
use crate::breaker::{BreakerPolicy, CircuitBreaker};
use crate::error::{Error, Result};

/// How often, and after how long, a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one (0: never retry).
    pub max_retries: u32,
    /// The wait before the first retry; each later wait doubles it.
    pub initial_backoff: Duration,
    /// The longest wait, including one asked for by a `Retry-After` header.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three retries after 250 ms, 500 ms and 1 s; waits of at most 10 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (from 0).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Timeouts, retries and size limits of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one whole request, body included.
    pub request_timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Largest body of one answer, in bytes.
    pub max_response_bytes: u64,
    /// When calls stop for a while after the service could not be reached.
    pub breaker: BreakerPolicy,
}

impl Default for HttpOptions {
    /// 5 s to connect, 30 s per request, the default retry policy, answers up to 32 MiB, the
    /// default circuit breaker.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_response_bytes: 32 * 1024 * 1024,
            breaker: BreakerPolicy::default(),
        }
    }
}

/// Parses a service's base URL: `http(s)://host[:port][/prefix]`, no query or fragment, and
/// a scheme this build can request ([`ServiceClient::check_scheme`]).
pub(crate) fn base_url(service: &'static str, raw: &str) -> Result<Url> {
    let config_error = |message: String| Error::Config { service, message };
    let base = Url::parse(raw.trim())
        .map_err(|e| config_error(format!("the base URL is invalid: {e}")))?;
    ServiceClient::check_scheme(service, &base)?;
    if base.cannot_be_a_base() || base.host().is_none() {
        return Err(config_error(format!("{base} is not a base URL")));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(config_error(format!(
            "{base}: the base URL must have no query or fragment"
        )));
    }
    Ok(base)
}

/// What a JSON value is, for messages about answers of the wrong shape ("a number").
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A failure that another attempt may not repeat.
#[derive(Debug)]
enum Transient {
    Status(u16),
    Timeout,
    Connect(String),
}

#[derive(Debug)]
enum Failure {
    Final(Error),
    Transient {
        cause: Transient,
        retry_after: Option<Duration>,
    },
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Final(err)
    }
}

/// Longest part of an error answer's body repeated in [`Error::Rejected`].
const MAX_MESSAGE_CHARS: usize = 200;

/// One request: a GET, or a POST of a JSON body; with extra headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) url: &'a Url,
    /// The JSON body of a POST; `None` for a GET.
    pub(crate) json: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    pub(crate) const fn get(url: &'a Url) -> Self {
        Self {
            url,
            json: None,
            headers: &[],
        }
    }
}

/// One platform service: its name (for errors), the HTTP client, the token and the policy.
#[derive(Debug)]
pub(crate) struct ServiceClient {
    service: &'static str,
    http: reqwest::Client,
    token: ServiceToken,
    options: HttpOptions,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
}

impl ServiceClient {
    pub(crate) fn new(
        service: &'static str,
        auth: ServiceAuth,
        options: HttpOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("invite-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config {
                service,
                message: e.to_string(),
            })?;
        Ok(Self {
            service,
            http,
            token: ServiceToken::new(service, auth, clock.clone())?,
            options,
            breaker: CircuitBreaker::new(options.breaker, clock.clone()),
            clock,
        })
    }

    pub(crate) const fn service(&self) -> &'static str {
        self.service
    }

    /// Checks that `url` can be requested by this build: `http`, or `https` with the `rustls`
    /// feature.
    pub(crate) fn check_scheme(service: &'static str, url: &Url) -> Result<()> {
        match url.scheme() {
            "http" => Ok(()),
            "https" if cfg!(feature = "rustls") => Ok(()),
            "https" => Err(Error::Config {
                service,
                message: format!(
                    "{url} is https, which needs invite-platform built with its `rustls` feature"
                ),
            }),
            other => Err(Error::Config {
                service,
                message: format!("{url}: unsupported scheme {other:?} (use http or https)"),
            }),
        }
    }

    /// GETs `url` and returns the body of a 2xx answer, retrying as the policy allows. `what`
    /// names the resource in [`Error::NotFound`].
    /// Through the service's circuit breaker: while it is open, [`Error::CircuitOpen`] at
    /// once; a call that ends unreachable (retries exhausted) counts as a failure, any answer
    /// as proof the service is there.
    pub(crate) async fn get(&self, url: &Url, what: &str) -> Result<Vec<u8>> {
        self.call(&Request::get(url), true, what).await
    }

    /// Sends `request` through the breaker and returns the body of a 2xx answer (empty for
    /// 204). With `retry`, what may pass is tried again as the policy allows; without it (a
    /// call that is not idempotent) the first failure is the answer.
    pub(crate) async fn call(
        &self,
        request: &Request<'_>,
        retry: bool,
        what: &str,
    ) -> Result<Vec<u8>> {
        let permit = self.breaker.permit().map_err(|open| Error::CircuitOpen {
            service: self.service,
            until: open.until,
        })?;
        let result = self.with_retries(request, retry, what).await;
        match &result {
            Err(e) if e.is_retryable() => permit.failed(),
            _ => permit.reached(),
        }
        result
    }

    async fn with_retries(
        &self,
        request: &Request<'_>,
        retry: bool,
        what: &str,
    ) -> Result<Vec<u8>> {
        let policy = self.options.retry;
        let max_retries = if retry { policy.max_retries } else { 0 };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (cause, retry_after) = match self.attempt(request, what).await {
                Ok(body) => return Ok(body),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Transient { cause, retry_after }) => (cause, retry_after),
            };
            if attempts > max_retries {
                return Err(self.exhausted(cause, attempts));
            }
            let wait = retry_after.map_or_else(
                || policy.backoff(attempts - 1),
                |asked| asked.min(policy.max_backoff),
            );
            tracing::warn!(
                service = self.service,
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                cause = ?cause,
                "{} request failed, retrying", self.service
            );
            let wait = TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
            self.clock.sleep_until(self.clock.now() + wait).await;
        }
    }

    fn exhausted(&self, cause: Transient, attempts: u32) -> Error {
        let service = self.service;
        match cause {
            Transient::Status(status) => Error::Status {
                service,
                status,
                attempts,
            },
            Transient::Timeout => Error::Timeout { service, attempts },
            Transient::Connect(message) => Error::Connect {
                service,
                message,
                attempts,
            },
        }
    }

    async fn attempt(&self, request: &Request<'_>, what: &str) -> Result<Vec<u8>, Failure> {
        let token = self.token.current();
        let mut builder = match request.json {
            None => self.http.get(request.url.clone()),
            Some(body) => self
                .http
                .post(request.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec()),
        };
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        let mut response = builder
            .bearer_auth(token.expose())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return self.body(&mut response).await;
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Failure::Transient {
                cause: Transient::Status(status.as_u16()),
                retry_after,
            });
        }
        let service = self.service;
        let err = match status {
            StatusCode::NOT_FOUND => Error::NotFound {
                service,
                what: what.to_owned(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                service,
                status: status.as_u16(),
            },
            _ => Error::Rejected {
                service,
                status: status.as_u16(),
                message: self.message(response).await,
            },
        };
        Err(Failure::Final(err))
    }

    /// The body of a 2xx answer, within the size limit.
    async fn body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
        let limit = self.options.max_response_bytes;
        let too_large = || {
            Failure::Final(Error::TooLarge {
                service: self.service,
                limit,
            })
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The start of an error answer's body (or its redirect target), for the error message.
    async fn message(&self, mut response: reqwest::Response) -> String {
        if response.status().is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            return format!("unexpected redirect to {to}");
        }
        let mut text = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            text.extend_from_slice(&chunk);
            if text.len() > MAX_MESSAGE_CHARS * 4 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&text);
        let text = text.trim();
        match text.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }

    /// A transport error: the builder's are final (a bug or bad configuration), the rest may
    /// pass.
    fn transport(&self, err: reqwest::Error) -> Failure {
        if err.is_builder() {
            return Failure::Final(Error::Config {
                service: self.service,
                message: err.without_url().to_string(),
            });
        }
        let cause = if err.is_timeout() {
            Transient::Timeout
        } else {
            Transient::Connect(chain(&err.without_url()))
        };
        Failure::Transient {
            cause,
            retry_after: None,
        }
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (0..6).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn schemes() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(ServiceClient::check_scheme("s", &url("http://parsing:8000")).is_ok());
        assert!(ServiceClient::check_scheme("s", &url("ftp://parsing")).is_err());
        assert_eq!(
            ServiceClient::check_scheme("s", &url("https://parsing")).is_ok(),
            cfg!(feature = "rustls")
        );
    }
}
