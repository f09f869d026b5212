//! The Parsing Service client: the users a parsing task collected, every page, as an
//! [`Audience`] — the [`AudienceSource`] of a platform deployment.

use std::collections::HashSet;
use std::sync::Arc;

use invite_core::Clock;
use invite_core::async_trait;
use invite_core::domain::UserId;
use invite_core::ports::{Audience, AudienceError, AudienceSource};
use reqwest::Url;

use crate::auth::ServiceAuth;
use crate::error::{Error, Result};
use crate::http::{HttpOptions, ServiceClient};

mod transformers;

use transformers::{Next, Page};

const SERVICE: &str = "Parsing Service";

/// Longest parsing task id accepted.
const MAX_TASK_ID_CHARS: usize = 200;

/// How to reach the Parsing Service.
#[derive(Debug, Clone)]
pub struct ParsingConfig {
    /// `PARSING_SERVICE_URL`: scheme, host, port and an optional path prefix; the users of a
    /// task are at `{base_url}/api/parsing/results/{task_id}/users`.
    pub base_url: String,
    /// The service token's identity and secret.
    pub auth: ServiceAuth,
    /// Timeouts, retries and the size limit of one page.
    pub http: HttpOptions,
    /// Most pages read for one result.
    pub max_pages: u32,
}

impl ParsingConfig {
    /// The service at `base_url` with default timeouts and retries and at most 10 000 pages.
    pub fn new(base_url: impl Into<String>, auth: ServiceAuth) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            http: HttpOptions::default(),
            max_pages: 10_000,
        }
    }
}

/// The client. Cheap to share behind an `Arc`; one connection pool and one cached token.
#[derive(Debug)]
pub struct ParsingClient {
    client: ServiceClient,
    base: Url,
    max_pages: u32,
}

impl ParsingClient {
    /// A client for `config`. Fails on a base URL that is not `http(s)://host…`, an empty
    /// identity or secret, or `https` without the `rustls` feature.
    pub fn new(config: ParsingConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let base = crate::http::base_url(SERVICE, &config.base_url)?;
        if config.max_pages == 0 {
            return Err(Error::Config {
                service: SERVICE,
                message: "max_pages is 0".to_owned(),
            });
        }
        Ok(Self {
            client: ServiceClient::new(SERVICE, config.auth, config.http, clock)?,
            base,
            max_pages: config.max_pages,
        })
    }

    /// `{base_url}/api/parsing/results/{task}/users`, the task id percent-encoded as one path
    /// segment.
    pub fn users_url(&self, task: &str) -> Result<Url> {
        let task = task.trim();
        let invalid = |message: &str| Error::InvalidRequest {
            service: SERVICE,
            message: message.to_owned(),
        };
        if task.is_empty() {
            return Err(invalid("the parsing task id is empty"));
        }
        if task.chars().count() > MAX_TASK_ID_CHARS || task.chars().any(char::is_control) {
            return Err(invalid("the parsing task id is not a valid id"));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| invalid("the base URL cannot take a path"))?
            .pop_if_empty()
            .extend(["api", "parsing", "results", task, "users"]);
        Ok(url)
    }

    /// Every user of parsing task `task` of `user`, following pages (see the crate docs for
    /// the shapes read). `user` is sent as the `user_id` query parameter, so the service can
    /// check the result is the user's. More than `max_records` users stops with
    /// [`Error::TooManyRecords`].
    #[tracing::instrument(skip_all, fields(parsing.task = %task, user.id = %user))]
    pub async fn users(&self, user: UserId, task: &str, max_records: u64) -> Result<Audience> {
        let first = self.users_url(task)?;
        let what = format!("parsing result {}", task.trim());
        let page_url = |n: Option<u64>| {
            let mut url = first.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("user_id", &user.to_string());
                if let Some(n) = n {
                    query.append_pair("page", &n.to_string());
                }
            }
            url
        };
        let malformed = |message: String| Error::Malformed {
            service: SERVICE,
            message,
        };

        let mut url = page_url(None);
        let mut asked_page = None;
        let mut first_page = None;
        let mut total = None;
        let mut visited = HashSet::new();
        let mut records = Vec::new();
        for fetched in 1..=self.max_pages {
            if !visited.insert(url.clone()) {
                return Err(malformed(format!("the page links loop back to {url}")));
            }
            let body = self.client.get(&url, &what).await?;
            let page = Page::parse(&body).map_err(malformed)?;
            if let (Some(asked), Some(got)) = (asked_page, page.page)
                && asked != got
            {
                return Err(malformed(format!(
                    "asked for page {asked}, got page {got}: the service ignores `page`"
                )));
            }
            first_page = first_page.or(page.page);
            total = page.total.or(total);
            let on_page = page.records.len();
            let next = page.next(first_page, (records.len() + on_page) as u64);
            records.extend(page.records);
            tracing::debug!(page = fetched, users = on_page, "read a page of users");
            if records.len() as u64 > max_records {
                return Err(Error::TooManyRecords {
                    service: SERVICE,
                    limit: max_records,
                });
            }
            match next {
                Next::Done => {
                    if let Some(total) = total
                        && (records.len() as u64) < total
                    {
                        return Err(malformed(format!(
                            "the result announced {total} users but its pages held {}",
                            records.len()
                        )));
                    }
                    tracing::info!(
                        pages = fetched,
                        users = records.len(),
                        "fetched parsing result {} of user {user}",
                        task.trim()
                    );
                    return Ok(Audience { records });
                }
                Next::Page(n) => {
                    asked_page = Some(n);
                    url = page_url(Some(n));
                }
                Next::Link(link) => {
                    asked_page = None;
                    url = self.follow(&url, &link)?;
                }
            }
        }
        Err(malformed(format!(
            "the result has more than {} pages",
            self.max_pages
        )))
    }

    /// A `next` link resolved against the page that gave it; it must stay on the service (the
    /// token goes with it).
    fn follow(&self, from: &Url, link: &str) -> Result<Url> {
        let malformed = |message: String| Error::Malformed {
            service: SERVICE,
            message,
        };
        let next = from
            .join(link)
            .map_err(|e| malformed(format!("the next page link {link:?} is invalid: {e}")))?;
        if next.origin() != self.base.origin() {
            return Err(malformed(format!(
                "the next page link {next} leaves the service at {}",
                self.base.origin().ascii_serialization()
            )));
        }
        Ok(next)
    }

    /// The service's name, as errors give it.
    pub const fn service(&self) -> &'static str {
        self.client.service()
    }
}

#[async_trait]
impl AudienceSource for ParsingClient {
    async fn fetch(
        &self,
        user: UserId,
        task: &str,
        max_records: u64,
    ) -> Result<Audience, AudienceError> {
        self.users(user, task, max_records)
            .await
            .map_err(|e| e.into_audience_error(task.trim()))
    }
}

#[cfg(test)]
mod tests {
    use invite_core::SystemClock;
    use invite_core::ports::Secret;

    use super::*;

    fn client(base: &str) -> Result<ParsingClient> {
        let auth = ServiceAuth::new("invite", Secret::new("k"));
        ParsingClient::new(ParsingConfig::new(base, auth), Arc::new(SystemClock))
    }

    #[test]
    fn users_url_keeps_the_prefix_and_encodes_the_id() {
        let c = client("http://parsing:8000").unwrap();
        assert_eq!(
            c.users_url("42").unwrap().as_str(),
            "http://parsing:8000/api/parsing/results/42/users"
        );
        let c = client("http://gw.local/parsing/").unwrap();
        assert_eq!(
            c.users_url(" a/b?c ").unwrap().as_str(),
            "http://gw.local/parsing/api/parsing/results/a%2Fb%3Fc/users"
        );
        assert!(matches!(
            c.users_url(" "),
            Err(Error::InvalidRequest { .. })
        ));
        assert!(c.users_url("a\nb").is_err());
    }

    #[test]
    fn refuses_bad_base_urls() {
        for base in [
            "parsing:8000",
            "mailto:a@b",
            "http://h/?x=1",
            "ftp://h/",
            "",
        ] {
            assert!(matches!(client(base), Err(Error::Config { .. })), "{base}");
        }
    }

    #[test]
    fn next_links_stay_on_the_service() {
        let c = client("http://parsing:8000/p").unwrap();
        let from = c.users_url("1").unwrap();
        assert_eq!(
            c.follow(&from, "?page=2").unwrap().as_str(),
            "http://parsing:8000/p/api/parsing/results/1/users?page=2"
        );
        assert_eq!(
            c.follow(&from, "/other?cursor=x").unwrap().as_str(),
            "http://parsing:8000/other?cursor=x"
        );
        assert!(c.follow(&from, "http://parsing:8000/x").is_ok());
        assert!(c.follow(&from, "http://evil:8000/x").is_err());
        assert!(c.follow(&from, "http://parsing:8001/x").is_err());
    }
}
