//! The Parsing Service's answers, read: one page of users and where the next one is.
//!
//! Shapes read (see the crate docs for the full list):
//!
//! - a JSON array: every user, one page;
//! - an object whose users are under `items`, `users`, `results` or `data` (the first of
//!   these keys that holds an array; a `null` there is an empty page), with the way to the
//!   next page, in this order:
//!   1. `next`, `next_page` or `links.next`: a URL (absolute, or relative to the page) or a
//!      page number; `null` or `""` means this is the last page;
//!   2. `page` (or `current_page`) with `pages`, `total_pages`, `page_count` or `last_page`;
//!   3. `page` with `has_more`, `has_next` or `has_next_page`;
//!   4. `page` with `total`, `count` or `total_count` (the number of users): more pages
//!      while fewer users have arrived and this page was not empty;
//!   5. none of these: this is the only page.
//!
//! `total` (or `count`, `total_count`) is also checked when paging ends: fewer users than it
//! announced is an error, never a silently short audience.

use serde_json::{Map, Value};

use crate::http::json_kind;

/// The keys that hold the users, by preference.
const LIST_KEYS: [&str; 4] = ["items", "users", "results", "data"];
const NEXT_KEYS: [&str; 2] = ["next", "next_page"];
const PAGE_KEYS: [&str; 2] = ["page", "current_page"];
const PAGES_KEYS: [&str; 4] = ["pages", "total_pages", "page_count", "last_page"];
const MORE_KEYS: [&str; 3] = ["has_more", "has_next", "has_next_page"];
const TOTAL_KEYS: [&str; 3] = ["total", "count", "total_count"];

/// Where the next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// This was the last page.
    Done,
    /// A link, as given.
    Link(String),
    /// The page with this number (`?page=N`).
    Page(u64),
}

/// One answer, read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Page {
    pub(crate) records: Vec<Value>,
    /// `Some` when the answer said explicitly where the next page is (or that there is none).
    pub(crate) next: Option<Next>,
    pub(crate) page: Option<u64>,
    pub(crate) pages: Option<u64>,
    pub(crate) has_more: Option<bool>,
    /// The number of users of the whole result, as announced.
    pub(crate) total: Option<u64>,
}

impl Page {
    /// Reads one answer's body.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        match value {
            Value::Array(records) => Ok(Self {
                records,
                ..Self::default()
            }),
            Value::Object(map) => Self::from_object(map),
            other => Err(format!(
                "expected a list of users or an object holding one, got {}",
                json_kind(&other)
            )),
        }
    }

    fn from_object(mut map: Map<String, Value>) -> Result<Self, String> {
        let key = LIST_KEYS
            .iter()
            .find(|k| matches!(map.get(**k), Some(Value::Array(_))))
            .or_else(|| {
                LIST_KEYS
                    .iter()
                    .find(|k| matches!(map.get(**k), Some(Value::Null)))
            })
            .ok_or_else(|| {
                format!(
                    "the object has no list of users under {} (keys: {})",
                    LIST_KEYS.join(", "),
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let records = match map.remove(*key) {
            Some(Value::Array(records)) => records,
            _ => Vec::new(),
        };
        let links_next = map
            .get("links")
            .and_then(|links| links.get("next"))
            .map(|v| ("links.next", v));
        let next = NEXT_KEYS
            .iter()
            .find_map(|k| map.get(*k).map(|v| (*k, v)))
            .or(links_next)
            .map(|(k, v)| match v {
                Value::Null => Ok(Next::Done),
                Value::String(s) if s.trim().is_empty() => Ok(Next::Done),
                Value::String(s) => Ok(Next::Link(s.trim().to_owned())),
                Value::Number(n) => n
                    .as_u64()
                    .map(Next::Page)
                    .ok_or_else(|| format!("`{k}` is not a page number: {n}")),
                other => Err(format!(
                    "`{k}` is neither a link nor a page number: {}",
                    json_kind(other)
                )),
            })
            .transpose()?;
        Ok(Self {
            records,
            next,
            page: number(&map, &PAGE_KEYS)?,
            pages: number(&map, &PAGES_KEYS)?,
            has_more: MORE_KEYS.iter().find_map(|k| map.get(*k)?.as_bool()),
            total: number(&map, &TOTAL_KEYS)?,
        })
    }

    /// Where to go after this page. `first_page` is the number of the first page seen (0 or 1,
    /// to tell how the service counts); `received` the users received so far, this page
    /// included.
    pub(crate) fn next(&self, first_page: Option<u64>, received: u64) -> Next {
        if let Some(next) = &self.next {
            return next.clone();
        }
        let Some(page) = self.page else {
            return Next::Done;
        };
        let following = Next::Page(page + 1);
        if let Some(pages) = self.pages {
            let base = first_page.unwrap_or(1).min(1);
            return if page + 1 - base < pages {
                following
            } else {
                Next::Done
            };
        }
        if let Some(more) = self.has_more {
            return if more { following } else { Next::Done };
        }
        match self.total {
            Some(total) if received < total && !self.records.is_empty() => following,
            _ => Next::Done,
        }
    }
}

/// The first of `keys` present, as a non-negative integer (`null` counts as absent).
fn number(map: &Map<String, Value>, keys: &[&str]) -> Result<Option<u64>, String> {
    for key in keys {
        match map.get(*key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` is not a non-negative integer: {v}"));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(v: Value) -> Page {
        Page::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn plain_array_is_the_only_page() {
        let p = page(json!(["@a", {"username": "b"}]));
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.next(None, 2), Next::Done);
    }

    #[test]
    fn explicit_next() {
        let p = page(
            json!({"count": 3, "next": "http://x/y?page=2", "previous": null, "results": [1]}),
        );
        assert_eq!(p.next(Some(1), 1), Next::Link("http://x/y?page=2".into()));
        assert_eq!(p.total, Some(3));
        let p = page(json!({"users": [1], "next": null, "page": 1, "pages": 4}));
        assert_eq!(p.next(Some(1), 1), Next::Done, "an explicit null wins");
        let p = page(json!({"items": [1], "next_page": 3}));
        assert_eq!(p.next(None, 1), Next::Page(3));
        let p = page(json!({"data": [1], "links": {"next": "/api/x?cursor=abc"}}));
        assert_eq!(p.next(None, 1), Next::Link("/api/x?cursor=abc".into()));
        let p = page(json!({"data": [1], "next": ""}));
        assert_eq!(p.next(None, 1), Next::Done);
    }

    #[test]
    fn page_counts_from_one_or_zero() {
        let p = page(json!({"items": [1], "page": 1, "total_pages": 3}));
        assert_eq!(p.next(Some(1), 1), Next::Page(2));
        let p = page(json!({"items": [1], "page": 3, "total_pages": 3}));
        assert_eq!(p.next(Some(1), 3), Next::Done);
        let p = page(json!({"items": [1], "page": 1, "pages": 3}));
        assert_eq!(p.next(Some(0), 2), Next::Page(2));
        let p = page(json!({"items": [1], "page": 2, "pages": 3}));
        assert_eq!(p.next(Some(0), 3), Next::Done);
    }

    #[test]
    fn has_more_and_total() {
        let p = page(json!({"items": [1], "page": 1, "has_more": true}));
        assert_eq!(p.next(Some(1), 1), Next::Page(2));
        let p = page(json!({"items": [1], "page": 2, "has_next": false}));
        assert_eq!(p.next(Some(1), 2), Next::Done);
        let p = page(json!({"users": [1, 2], "page": 1, "total": 5}));
        assert_eq!(p.next(Some(1), 2), Next::Page(2));
        assert_eq!(p.next(Some(1), 5), Next::Done);
        let p = page(json!({"users": [], "page": 3, "total": 5}));
        assert_eq!(p.next(Some(1), 4), Next::Done, "an empty page ends paging");
        let p = page(json!({"users": [1], "total": 5}));
        assert_eq!(p.next(None, 1), Next::Done, "no page number, no way on");
    }

    #[test]
    fn list_keys() {
        assert_eq!(page(json!({"items": null, "page": 1})).records.len(), 0);
        let p = page(json!({"data": [1, 2], "users": [3], "meta": {}}));
        assert_eq!(p.records, vec![json!(3)], "users before data");
        let err = Page::parse(br#"{"people": [1]}"#).unwrap_err();
        assert!(
            err.contains("no list of users") && err.contains("people"),
            "{err}"
        );
    }

    #[test]
    fn malformed_answers() {
        assert!(Page::parse(b"[{").unwrap_err().starts_with("invalid JSON"));
        assert!(Page::parse(b"\"text\"").unwrap_err().contains("a string"));
        assert!(Page::parse(br#"{"items": [], "page": -1}"#).is_err());
        assert!(Page::parse(br#"{"items": [], "next": true}"#).is_err());
        assert!(Page::parse(b"").is_err());
    }
}
