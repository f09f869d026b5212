//! Message templates: `Hello {first_name|friend}!`.
//!
//! A template is parsed once, when the task is created; unknown variables and broken braces are
//! errors then, never at send time. Rendering substitutes user data literally — a first name
//! of `{username}` stays `{username}` — and never panics. `{{` and `}}` write literal braces.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A variable a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// `{username}` (without `@`).
    Username,
    /// `{first_name}`.
    FirstName,
    /// `{last_name}`.
    LastName,
    /// `{full_name}` (or first and last name joined).
    FullName,
}

impl Variable {
    const ALL: [Variable; 4] = [
        Variable::Username,
        Variable::FirstName,
        Variable::LastName,
        Variable::FullName,
    ];

    const fn name(self) -> &'static str {
        match self {
            Variable::Username => "username",
            Variable::FirstName => "first_name",
            Variable::LastName => "last_name",
            Variable::FullName => "full_name",
        }
    }
}

/// A problem in a template, with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{something}` that is not a known variable.
    #[error(
        "unknown variable {{{name}}} at position {at}; known: username, first_name, last_name, full_name"
    )]
    UnknownVariable {
        /// The name found.
        name: String,
        /// Byte offset of `{`.
        at: usize,
    },
    /// `{` without a closing `}`.
    #[error("unclosed '{{' at position {at} (write '{{{{' for a literal brace)")]
    Unclosed {
        /// Byte offset of `{`.
        at: usize,
    },
    /// `}` without an opening `{`.
    #[error("unmatched '}}' at position {at} (write '}}}}' for a literal brace)")]
    Unmatched {
        /// Byte offset of `}`.
        at: usize,
    },
    /// The template renders to nothing.
    #[error("template is empty")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var {
        var: Variable,
        fallback: Option<String>,
    },
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Values a template is rendered with (from the target).
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateValues<'a> {
    /// Username without `@`.
    pub username: Option<&'a str>,
    /// First name.
    pub first_name: Option<&'a str>,
    /// Last name.
    pub last_name: Option<&'a str>,
    /// Full name.
    pub full_name: Option<&'a str>,
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if matches!(chars.peek(), Some((_, '{'))) => {
                    chars.next();
                    text.push('{');
                }
                '}' if matches!(chars.peek(), Some((_, '}'))) => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::Unmatched { at }),
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest
                        .find(['}', '{'])
                        .filter(|&e| rest[e..].starts_with('}'))
                    else {
                        return Err(TemplateError::Unclosed { at });
                    };
                    let inner = &rest[..end];
                    let (name, fallback) = match inner.split_once('|') {
                        Some((n, f)) => (n.trim(), Some(f.to_owned())),
                        None => (inner.trim(), None),
                    };
                    let var = Variable::ALL
                        .into_iter()
                        .find(|v| v.name() == name)
                        .ok_or_else(|| TemplateError::UnknownVariable {
                            // Cut: an error never grows with its input.
                            name: super::echo(name),
                            at,
                        })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var { var, fallback });
                    // Skip the variable's characters and the closing brace.
                    let stop = at + 1 + end;
                    while chars.next_if(|&(i, _)| i <= stop).is_some() {}
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            source: source.to_owned(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = Variable> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var { var, .. } => Some(*var),
            Piece::Text(_) => None,
        })
    }

    /// Renders the template. Missing or blank values use the fallback, or nothing.
    pub fn render(&self, values: &TemplateValues<'_>) -> String {
        let joined;
        let full_name = match values.full_name.filter(|s| !s.trim().is_empty()) {
            Some(f) => Some(f),
            None => {
                joined = [values.first_name, values.last_name]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                (!joined.is_empty()).then_some(joined.as_str())
            }
        };
        let mut out = String::with_capacity(self.source.len() + 32);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { var, fallback } => {
                    let value = match var {
                        Variable::Username => values.username,
                        Variable::FirstName => values.first_name,
                        Variable::LastName => values.last_name,
                        Variable::FullName => full_name,
                    }
                    .map(str::trim)
                    .filter(|s| !s.is_empty());
                    match (value, fallback) {
                        (Some(v), _) => out.push_str(v),
                        (None, Some(f)) => out.push_str(f),
                        (None, None) => {}
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(first: Option<&'a str>, user: Option<&'a str>) -> TemplateValues<'a> {
        TemplateValues {
            username: user,
            first_name: first,
            ..Default::default()
        }
    }

    #[test]
    fn renders_with_fallbacks() {
        let t = Template::parse("Hi {first_name|friend}, I am @{username}!").unwrap();
        assert_eq!(
            t.render(&values(Some("Anna"), Some("anna_k"))),
            "Hi Anna, I am @anna_k!"
        );
        assert_eq!(t.render(&values(None, None)), "Hi friend, I am @!");
        assert_eq!(t.render(&values(Some("  "), None)), "Hi friend, I am @!");
    }

    #[test]
    fn full_name_falls_back_to_first_and_last() {
        let t = Template::parse("{full_name|there}").unwrap();
        let v = TemplateValues {
            first_name: Some("Anna"),
            last_name: Some("Karenina"),
            ..Default::default()
        };
        assert_eq!(t.render(&v), "Anna Karenina");
        assert_eq!(t.render(&TemplateValues::default()), "there");
    }

    #[test]
    fn user_data_is_never_template_syntax() {
        let t = Template::parse("Hello {first_name}").unwrap();
        assert_eq!(
            t.render(&values(Some("{username}}{"), Some("x"))),
            "Hello {username}}{"
        );
    }

    #[test]
    fn errors_at_parse_time() {
        assert_eq!(
            Template::parse("Hi {name}"),
            Err(TemplateError::UnknownVariable {
                name: "name".into(),
                at: 3
            })
        );
        assert_eq!(
            Template::parse("Hi {first_name"),
            Err(TemplateError::Unclosed { at: 3 })
        );
        assert_eq!(
            Template::parse("Hi {first_{name}"),
            Err(TemplateError::Unclosed { at: 3 })
        );
        assert_eq!(
            Template::parse("Hi }"),
            Err(TemplateError::Unmatched { at: 3 })
        );
        assert_eq!(Template::parse("  "), Err(TemplateError::Empty));
    }

    #[test]
    fn literal_braces_and_unicode() {
        let t = Template::parse("Привет, {{друг}} {first_name|друг} 👋").unwrap();
        assert_eq!(t.render(&values(None, None)), "Привет, {друг} друг 👋");
        assert_eq!(t.variables().collect::<Vec<_>>(), [Variable::FirstName]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Text with the characters that matter to the parser, and some that do not.
        fn source() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("|".to_owned()),
                Just("{{".to_owned()),
                Just("}}".to_owned()),
                Just("{first_name|".to_owned()),
                Just("{username}".to_owned()),
                Just("{full_name}".to_owned()),
                "[a-zé \\t\u{0}\u{1c}]{0,8}",
                ".{0,4}",
            ];
            proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Any text parses or is refused without a panic, with a message of bounded
            /// length; a rendering is at most the source plus one value per variable.
            #[test]
            fn parsing_and_rendering_never_panic_and_stay_bounded(
                src in source(),
                name in proptest::option::of(".{0,40}"),
                first in proptest::option::of(".{0,40}"),
                last in proptest::option::of(".{0,40}"),
                full in proptest::option::of(".{0,40}"),
            ) {
                match Template::parse(&src) {
                    Ok(t) => {
                        prop_assert_eq!(t.source(), src.as_str());
                        let values = TemplateValues {
                            username: name.as_deref(),
                            first_name: first.as_deref(),
                            last_name: last.as_deref(),
                            full_name: full.as_deref(),
                        };
                        let out = t.render(&values);
                        let longest = [&name, &first, &last, &full]
                            .iter()
                            .map(|v| v.as_deref().map_or(0, str::len))
                            .sum::<usize>()
                            + 1;
                        let vars = t.variables().count();
                        prop_assert!(out.len() <= src.len() + vars * longest);
                    }
                    Err(e) => {
                        let text = e.to_string();
                        prop_assert!(text.chars().count() <= 300, "{} characters", text.chars().count());
                    }
                }
            }
        }

        #[test]
        fn an_unknown_variable_is_echoed_cut() {
            let src = format!("Hi {{{}}}", "v".repeat(5000));
            let e = Template::parse(&src).unwrap_err();
            assert!(e.to_string().chars().count() < 300, "{e}");
        }
    }
}
