//! JSON: an array of objects (their keys are the columns), an array of strings or numbers (one
//! column, no header), or an object holding one such array (`{"users": [...]}`).
//!
//! The document is parsed element by element into plain text cells (no JSON tree of the whole
//! file is built); the byte limit bounds it. An array's objects may name at most
//! [`MAX_COLUMNS`] distinct keys between them: an object that passes it is not read further
//! and the file is refused ([`ImportError::TooManyColumns`]). So a row is never wider than
//! that, and the work is linear in the file's size (a row of empty cells as wide as every key
//! seen so far made it quadratic).

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::columns::{HeaderHint, LabelStyle};
use super::error::{ImportError, Result};
use super::input::BOM;
use super::report::{ImportContext, ImportReport};
use super::table::{RawRow, number_text};
use super::validate::Pipeline;
use super::{FileFormat, ImportOptions, MAX_COLUMNS};

/// Keys that name the list of people when a wrapping object holds several arrays.
const LIST_KEYS: &[&str] = &[
    "users",
    "items",
    "data",
    "results",
    "members",
    "participants",
    "targets",
    "contacts",
    "records",
    "rows",
];

/// What the elements of an array are, decided by the first one that is not `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Objects,
    Scalars,
    Arrays,
}

#[derive(Debug)]
enum Item {
    Null,
    /// A string, number or boolean, as text.
    Scalar(String),
    /// `(column, text)` pairs.
    Object(Vec<(usize, String)>),
    /// An element of another shape than the first one, as JSON text.
    Misfit(String),
}

#[derive(Debug, Default)]
struct Array {
    shape: Option<Shape>,
    keys: Vec<String>,
    key_index: HashMap<String, usize>,
    items: Vec<Item>,
    /// The element (from 1) whose keys took the array past [`MAX_COLUMNS`] distinct keys;
    /// nothing after it is kept.
    too_wide: Option<u64>,
}

/// One element of an array, with an object's keys capped as they are read: past
/// [`MAX_COLUMNS`] the rest of the object is skipped unparsed.
#[derive(Debug)]
enum Element {
    Object {
        pairs: Vec<(String, Value)>,
        too_wide: bool,
    },
    Other(Value),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Element, A::Error> {
                let mut pairs = Vec::new();
                let mut too_wide = false;
                while let Some(key) = map.next_key::<String>()? {
                    if pairs.len() < MAX_COLUMNS {
                        pairs.push((key, map.next_value::<Value>()?));
                    } else {
                        too_wide = true;
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Element::Object { pairs, too_wide })
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Element, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Element::Other)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Element, E> {
                Ok(Element::Other(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

impl Array {
    fn add(&mut self, element: Element) {
        if self.too_wide.is_some() {
            return;
        }
        let number = self.items.len() as u64 + 1;
        let shape = match &element {
            Element::Other(Value::Null) => {
                self.items.push(Item::Null);
                return;
            }
            Element::Object { .. } => Shape::Objects,
            Element::Other(Value::Array(_)) => Shape::Arrays,
            Element::Other(_) => Shape::Scalars,
        };
        let expected = *self.shape.get_or_insert(shape);
        let item = match (expected, element) {
            (Shape::Objects, Element::Object { too_wide: true, .. }) => {
                self.too_wide = Some(number);
                return;
            }
            (Shape::Objects, Element::Object { pairs, .. }) => {
                let mut cells = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let Some(col) = self.key(k) else {
                        self.too_wide = Some(number);
                        return;
                    };
                    cells.push((col, value_text(v)));
                }
                Item::Object(cells)
            }
            (
                Shape::Scalars,
                Element::Other(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))),
            ) => Item::Scalar(value_text(v)),
            (_, Element::Object { pairs, .. }) => {
                Item::Misfit(value_text(Value::Object(pairs.into_iter().collect())))
            }
            (_, Element::Other(v)) => Item::Misfit(value_text(v)),
        };
        self.items.push(item);
    }

    /// The column of `key`; `None` when it would be one past [`MAX_COLUMNS`].
    fn key(&mut self, key: String) -> Option<usize> {
        if let Some(i) = self.key_index.get(&key) {
            return Some(*i);
        }
        let i = self.keys.len();
        if i >= MAX_COLUMNS {
            return None;
        }
        self.keys.push(key.clone());
        self.key_index.insert(key, i);
        Some(i)
    }

    fn is_empty(&self) -> bool {
        self.too_wide.is_none() && self.items.iter().all(|i| matches!(i, Item::Null))
    }
}

/// A JSON value as a cell: strings as they are, integral numbers as integer text, `null` as
/// an empty cell, arrays and objects as compact JSON.
fn value_text(value: Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => number_text(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

struct ArrayVisitor;

impl<'de> Visitor<'de> for ArrayVisitor {
    type Value = Array;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Array, A::Error> {
        let mut array = Array::default();
        while let Some(element) = seq.next_element::<Element>()? {
            array.add(element);
        }
        Ok(array)
    }
}

/// The document's top level.
#[derive(Debug)]
enum Top {
    Array(Array),
    /// The array-valued keys of an object, with their arrays.
    Object(Vec<(String, Array)>),
    Other,
}

/// A value of a wrapping object: an array, or anything else (skipped).
struct MaybeArray(Option<Array>);

impl<'de> Deserialize<'de> for MaybeArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeArray;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<MaybeArray, A::Error> {
                ArrayVisitor.visit_seq(seq).map(|a| MaybeArray(Some(a)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<MaybeArray, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeArray(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<MaybeArray, E> {
                Ok(MaybeArray(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array or an object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Top, A::Error> {
                ArrayVisitor.visit_seq(seq).map(Top::Array)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Top, A::Error> {
                let mut arrays = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let MaybeArray(Some(array)) = map.next_value()? {
                        arrays.push((key, array));
                    }
                }
                Ok(Top::Object(arrays))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Top, E> {
                Ok(Top::Other)
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_error(e: &serde_json::Error) -> ImportError {
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((m, _)) => m.to_owned(),
        None => text,
    };
    ImportError::InvalidJson {
        line: e.line() as u64,
        column: e.column() as u64,
        message,
    }
}

/// The array holding the people.
fn pick(top: Top) -> Result<Array> {
    match top {
        Top::Array(a) => Ok(a),
        Top::Other => Err(ImportError::JsonNotATable),
        Top::Object(arrays) if arrays.is_empty() => Err(ImportError::JsonNotATable),
        Top::Object(arrays) => {
            let mut filled: Vec<(String, Array)> =
                arrays.into_iter().filter(|(_, a)| !a.is_empty()).collect();
            if filled.len() <= 1 {
                return filled.pop().map(|(_, a)| a).ok_or(ImportError::Empty);
            }
            let listed: Vec<usize> = filled
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| LIST_KEYS.contains(&k.to_lowercase().as_str()))
                .map(|(i, _)| i)
                .collect();
            match listed.as_slice() {
                [i] => Ok(filled.swap_remove(*i).1),
                _ => Err(ImportError::JsonAmbiguous {
                    keys: filled.into_iter().map(|(k, _)| k).collect(),
                }),
            }
        }
    }
}

const MISFIT: &str = "this element is not shaped like the first one (an object or a string)";

/// Reads a JSON document.
pub(crate) fn read(
    bytes: &[u8],
    opts: &ImportOptions,
    ctx: ImportContext<'_>,
) -> Result<ImportReport> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::InvalidUtf8 {
        row: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64,
    })?;
    let top: Top = serde_json::from_str(text).map_err(|e| parse_error(&e))?;
    let array = pick(top)?;
    if let Some(row) = array.too_wide {
        return Err(ImportError::TooManyColumns {
            row,
            limit: MAX_COLUMNS,
        });
    }
    let (hint, style) = match array.shape {
        None => return Err(ImportError::Empty),
        Some(Shape::Arrays) => return Err(ImportError::JsonNotATable),
        Some(Shape::Objects) => (HeaderHint::Given(array.keys.clone()), LabelStyle::Numbered),
        Some(Shape::Scalars) => (HeaderHint::Never, LabelStyle::Numbered),
    };
    let width = array.keys.len();
    let mut pipeline = Pipeline::new(FileFormat::Json, hint, style, opts, ctx);
    for (i, item) in array.items.into_iter().enumerate() {
        let number = i as u64 + 1;
        let row = match item {
            Item::Null => continue,
            Item::Scalar(s) => RawRow::new(number, vec![s]),
            Item::Object(pairs) => {
                let mut cells = vec![String::new(); width];
                for (col, text) in pairs {
                    cells[col] = text;
                }
                RawRow::new(number, cells)
            }
            Item::Misfit(text) => RawRow::malformed(number, text, MISFIT.to_owned()),
        };
        pipeline.push(row)?;
    }
    pipeline.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_integer_text() {
        let v: Value = serde_json::from_str("[12345678901, 1.2345E+10, 123.0, 0.5, true]").unwrap();
        let Value::Array(items) = v else { panic!() };
        let texts: Vec<String> = items.into_iter().map(value_text).collect();
        assert_eq!(texts, ["12345678901", "12345000000", "123", "0.5", "true"]);
    }

    #[test]
    fn picks_the_wrapped_array() {
        let top: Top = serde_json::from_str(
            r#"{"total": 2, "meta": {"a": [1]}, "errors": [], "users": [{"id": 1}]}"#,
        )
        .unwrap();
        let a = pick(top).unwrap();
        assert_eq!(a.keys, ["id"]);

        let top: Top = serde_json::from_str(r#"{"people": ["@a"], "users": ["@b"]}"#).unwrap();
        assert_eq!(pick(top).unwrap().items.len(), 1);

        let top: Top = serde_json::from_str(r#"{"a": ["@a"], "b": ["@b"]}"#).unwrap();
        assert_eq!(
            pick(top).unwrap_err(),
            ImportError::JsonAmbiguous {
                keys: vec!["a".into(), "b".into()]
            }
        );
        let top: Top = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert_eq!(pick(top).unwrap_err(), ImportError::JsonNotATable);
        let top: Top = serde_json::from_str(r#""text""#).unwrap();
        assert_eq!(pick(top).unwrap_err(), ImportError::JsonNotATable);
    }
}
