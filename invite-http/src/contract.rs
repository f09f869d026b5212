//! The finishing pass of the OpenAPI document: what the derives cannot say is added here, from
//! the same constants the validation uses (`invite_core`'s enumerations, ranges and limits), so
//! that the document accepts what the server accepts and refuses what it refuses:
//!
//! - enumerations (`platform`, `priority`, the status filters, report and file formats,
//!   encodings, countries) and patterns of identifiers, groups, templates, account ids and the
//!   `Idempotency-Key`;
//! - lengths and item counts (`name`, `template`, names of targets, `accounts`, `targets`);
//! - the per-action shape of a new task: `invite` needs `group` and refuses `template`,
//!   `message` the reverse, `invite_and_message` needs both;
//! - every status an operation can answer, each with the problem document;
//! - links from a created task to the operations on it.
//!
//! Rules that depend on the clock (`scheduled_at` at most 366 days ahead), on another field
//! (which identifier kinds a platform accepts), on the stored task (an update's group and
//! template) or on a file's content are stated in the descriptions.

use invite_core::domain::{Country, ExecutionStatus, Platform, Priority, TaskStatus};
use invite_core::service::{DEDUPE_DAYS, ServiceLimits};
use serde_json::{Map, Value, json};

use crate::accounts::MAX_LABEL_CHARS;
use crate::api::{IMPORT_FILE_FIELDS, READ_FIELDS, SUPPRESS_FILE_FIELDS, VALIDATE_FILE_FIELDS};
use crate::error::PROBLEM_JSON;

/// Characters Rust's `char::is_whitespace` (Unicode White_Space) counts as blank: the server
/// trims these, so the patterns name them exactly (a regex `\s` differs between engines).
const BLANK: &str = r"\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A Telegram username, a numeric user id or an E.164 phone (`+` and 8 to 15 digits).
pub const IDENTIFIER_PATTERN: &str =
    r"^(?:@?[A-Za-z][A-Za-z0-9_]{4,31}|[1-9][0-9]{0,17}|\+[1-9][0-9]{7,14})$";

/// A group: `@name` (4 to 32 characters), a numeric id, or an invite link, with or without
/// `https://t.me/`.
pub const GROUP_PATTERN: &str = r"^(?:-?[1-9][0-9]{0,17}|(?:https?://)?(?:t\.me/|telegram\.me/|www\.t\.me/)?(?:@?[A-Za-z][A-Za-z0-9_]{3,31}|(?:\+|joinchat/)[A-Za-z0-9_-]+)/*)$";

/// The variables of a template.
const VARIABLES: &str = "username|first_name|last_name|full_name";

/// A template: text with `{variable}` or `{variable|fallback}`, `{{` and `}}` for braces, and
/// at least one character that is not blank.
fn template_pattern() -> String {
    let var = format!(r"\{{[{BLANK}]*(?:{VARIABLES})[{BLANK}]*(?:\|[^{{}}]*)?\}}");
    let item = format!(r"[^{{}}]|\{{\{{|\}}\}}|{var}");
    let solid = format!(r"[^{{}}{BLANK}]|\{{\{{|\}}\}}|{var}");
    format!(r"^(?:{item})*?(?:{solid})(?:{item})*$")
}

/// Text with at least one character that is not blank (searched, not anchored).
fn not_blank() -> String {
    format!("[^{BLANK}]")
}

/// The finished document of `doc`.
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    let limits = ServiceLimits::default();
    add_enums(&mut doc);
    refine_bodies(&mut doc, &limits);
    refine_views(&mut doc);
    refine_forms(&mut doc);
    refine_parameters(&mut doc);
    split_create_body(&mut doc);
    document_statuses(&mut doc);
    link_created_task(&mut doc);
    refine_accounts(&mut doc);
    doc
}

fn schemas(doc: &mut Value) -> &mut Map<String, Value> {
    doc.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas")
}

/// The property `name` of component `schema`, merged with `patch` (a `null` in `patch`
/// removes the key).
fn patch_property(doc: &mut Value, schema: &str, name: &str, patch: Value) {
    let Some(prop) = doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{name}"))
    else {
        panic!("no property {schema}.{name} in the document");
    };
    merge(prop, patch);
}

fn merge(target: &mut Value, patch: Value) {
    let (Some(target), Value::Object(patch)) = (target.as_object_mut(), patch) else {
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, or `null` when the field is optional and may be sent as `null`.
fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

fn add_enums(doc: &mut Value) {
    let lower = |v: &str| v.to_ascii_lowercase();
    let platforms: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
    let priorities: Vec<String> = Priority::ALL.iter().map(|p| lower(p.as_str())).collect();
    let task_statuses: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
    let exec_statuses: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
    let countries: Vec<&str> = Country::supported().collect();
    let s = schemas(doc);
    s.insert(
        "Platform".into(),
        json!({"type": "string", "enum": platforms,
               "description": "A messenger (read in any case)."}),
    );
    s.insert(
        "PriorityName".into(),
        json!({"type": "string", "enum": priorities,
               "description": "A task priority as sent (read in any case; `normal` is `medium`)."}),
    );
    let priorities_out: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
    s.insert(
        "Priority".into(),
        json!({"type": "string", "enum": priorities_out, "description": "A task's priority."}),
    );
    s.insert(
        "TaskStatus".into(),
        json!({"type": "string", "enum": task_statuses,
               "description": "A task's status (read in any case)."}),
    );
    s.insert(
        "ExecutionStatus".into(),
        json!({"type": "string", "enum": exec_statuses,
               "description": "A log row's status (read in any case)."}),
    );
    s.insert(
        "Country".into(),
        json!({"type": "string", "enum": countries,
               "description": "ISO 3166 code of a country whose national phone formats are understood (read in any case)."}),
    );
}

/// Answers name their enumerations too.
fn refine_views(doc: &mut Value) {
    let enumerated = json!({"$ref": null, "type": null});
    for (schema, field, name) in [
        ("TaskView", "platform", "Platform"),
        ("TaskView", "status", "TaskStatus"),
        ("TaskView", "priority", "Priority"),
        ("StatusView", "status", "TaskStatus"),
    ] {
        let mut patch = enumerated.clone();
        patch["$ref"] = json!(format!("#/components/schemas/{name}"));
        patch_property(doc, schema, field, patch);
    }
}

fn refine_bodies(doc: &mut Value, limits: &ServiceLimits) {
    let (min_days, max_days) = (*DEDUPE_DAYS.start(), *DEDUPE_DAYS.end());
    let days =
        json!({"type": "integer", "format": "int32", "minimum": min_days, "maximum": max_days});
    let name = json!({"type": "string", "minLength": 1, "maxLength": limits.max_name_length,
                      "pattern": not_blank()});
    let template = json!({"type": "string", "maxLength": limits.max_template_length,
                          "pattern": template_pattern()});
    let group = json!({"type": "string", "pattern": GROUP_PATTERN, "maxLength": 255});
    let account = json!({"type": "string", "minLength": 1, "maxLength": 255,
                         "pattern": format!(r"^[^{BLANK}\x00-\x1F\x7F-\x9F]+$")});
    let accounts = json!({"type": "array", "items": account, "minItems": 1});
    let targets = json!({"type": "array", "items": reference("TargetInput"),
                         "maxItems": limits.max_targets_per_task});
    let identifier = json!({"type": "string", "pattern": IDENTIFIER_PATTERN});
    let short_text = json!({"type": "string", "maxLength": 255});

    for body in ["CreateTaskBody", "UpdateTaskBody"] {
        let optional = body == "UpdateTaskBody";
        let opt = |v: &Value| {
            if optional {
                nullable(v.clone())
            } else {
                v.clone()
            }
        };
        patch_property(doc, body, "name", opt(&name));
        patch_property(doc, body, "priority", nullable(reference("PriorityName")));
        patch_property(doc, body, "group", nullable(group.clone()));
        patch_property(doc, body, "template", nullable(template.clone()));
        patch_property(doc, body, "accounts", nullable(accounts.clone()));
        patch_property(doc, body, "dedupe_days", nullable(days.clone()));
        patch_property(
            doc,
            body,
            "targets",
            if optional {
                nullable(targets.clone())
            } else {
                targets.clone()
            },
        );
    }
    patch_property(
        doc,
        "CreateTaskBody",
        "platform",
        json!({"$ref": "#/components/schemas/Platform", "type": null}),
    );
    schemas(doc).get_mut("TargetInput").map(|t| {
        t.pointer_mut("/oneOf/0")
            .map(|s| merge(s, identifier.clone()))
    });
    patch_property(doc, "TargetBody", "identifier", identifier.clone());
    for name in ["first_name", "last_name", "full_name", "email"] {
        patch_property(doc, "TargetBody", name, nullable(short_text.clone()));
    }
    patch_property(
        doc,
        "ParsingImportBody",
        "dedupe_days",
        nullable(days.clone()),
    );
    patch_property(
        doc,
        "ParsingImportBody",
        "task_id",
        json!({"minimum": 1, "maximum": i64::MAX}),
    );
    schemas(doc).insert(
        "StringOrNumber".into(),
        json!({"oneOf": [
            {"type": "string", "minLength": 1, "maxLength": 255, "pattern": not_blank()},
            {"type": "integer", "format": "int64"}
        ], "description": "A string, or a number read as its decimal text."}),
    );
    // At least one person, by `identifier` or in `identifiers`.
    patch_property(
        doc,
        "SuppressBody",
        "platform",
        nullable(reference("Platform")),
    );
    patch_property(
        doc,
        "SuppressBody",
        "identifier",
        nullable(identifier.clone()),
    );
    patch_property(
        doc,
        "SuppressBody",
        "identifiers",
        nullable(json!({"type": "array", "items": identifier,
                        "maxItems": limits.max_targets_per_task})),
    );
    patch_property(doc, "SuppressBody", "reason", nullable(short_text));
    // At least one person: by `identifier`, or in `identifiers` (or both).
    let s = schemas(doc);
    let Some(base) = s.get("SuppressBody").cloned() else {
        return;
    };
    let mut one = base.clone();
    one["required"] = json!(["identifier"]);
    one["properties"]["identifier"] = identifier.clone();
    one["description"] =
        json!("People never to contact: one `identifier` (and maybe more in `identifiers`).");
    let mut many = base;
    many["required"] = json!(["identifiers"]);
    many["properties"]["identifiers"] = json!({"type": "array", "items": identifier,
        "minItems": 1, "maxItems": limits.max_targets_per_task});
    many["description"] =
        json!("People never to contact: `identifiers` (and maybe one more in `identifier`).");
    s.insert("SuppressOneBody".into(), one);
    s.insert("SuppressManyBody".into(), many);
    s.insert(
        "SuppressBody".into(),
        json!({"description": "`POST /suppressions`: people never to contact, at least one.",
               "anyOf": [reference("SuppressOneBody"), reference("SuppressManyBody")]}),
    );
}

/// The device fields an added account may carry (its original login's).
const DEVICE_FIELDS: [&str; 5] = [
    "device_model",
    "system_version",
    "app_version",
    "system_lang_code",
    "lang_code",
];

/// The bodies of `POST /accounts` (JSON and form) and `PATCH /accounts/{id}`. Whether a
/// session string or `.session` file is one Telegram accepts is stated in words.
fn refine_accounts(doc: &mut Value) {
    let label = json!({"type": ["string", "null"], "maxLength": MAX_LABEL_CHARS,
                       "pattern": r"^[^\x00-\x1F\x7F-\x9F]*$"});
    let api_id = json!({"type": ["integer", "null"], "format": "int32", "minimum": 1});
    let api_hash = json!({"type": ["string", "null"], "pattern": "^[0-9A-Fa-f]{32}$"});
    let platform = json!({"type": "string", "enum": ["telegram"]});
    let device = json!({"type": ["string", "null"],
                        "maxLength": crate::accounts::MAX_DEVICE_FIELD_CHARS,
                        "pattern": r"^[^\x00-\x1F\x7F-\x9F]*$"});
    for (schema, form) in [("AddAccountRequest", false), ("AddAccountForm", true)] {
        patch_property(doc, schema, "platform", platform.clone());
        let device_fields = DEVICE_FIELDS.map(|name| (name, device.clone()));
        for (name, mut prop) in [
            ("api_id", api_id.clone()),
            ("api_hash", api_hash.clone()),
            ("label", label.clone()),
        ]
        .into_iter()
        .chain(device_fields)
        {
            if form {
                // A form carries text: no `null` there (the field is left out).
                prop["type"] = prop["type"][0].clone();
            }
            patch_property(doc, schema, name, prop);
        }
    }
    patch_property(doc, "AddAccountRequest", "session", json!({"minLength": 1}));
    let form = &mut schemas(doc)["AddAccountForm"];
    merge(
        &mut form["properties"]["file"],
        json!({"format": null, "contentMediaType": "application/octet-stream"}),
    );
    form["properties"]["session"] = json!({"type": "string", "minLength": 1,
        "description": "A session string instead of a file."});
    form["additionalProperties"] = Value::Bool(false);
    patch_property(doc, "PatchAccountRequest", "label", label);
}

/// Multipart forms carry text: no `null`, no blank field (leave it out), and `task_id` is
/// required by `/import/file`.
fn refine_forms(doc: &mut Value) {
    let (min_days, max_days) = (*DEDUPE_DAYS.start(), *DEDUPE_DAYS.end());
    let Some(form) = schemas(doc).get_mut("ImportForm") else {
        return;
    };
    if let Some(props) = form.get_mut("properties").and_then(Value::as_object_mut) {
        for (_, prop) in props.iter_mut() {
            if let Some(Value::Array(types)) = prop.get("type").cloned() {
                let first = types.into_iter().find(|t| t != "null");
                prop["type"] = first.unwrap_or(Value::Null);
            }
        }
        let text = |extra: Value| {
            let mut v = json!({"type": "string"});
            merge(&mut v, extra);
            v
        };
        props.insert(
            "task_id".into(),
            json!({"type": "integer", "format": "int64", "minimum": 1,
                   "description": "The task (required by `/import/file`; optional for `/import/validate`, where it adds the task's targets and de-duplication window)."}),
        );
        // The OpenAPI 3.1 form of a file part (`format: binary` is 3.0's).
        merge(
            &mut props["file"],
            json!({"format": null, "contentMediaType": "application/octet-stream"}),
        );
        let days_description = props["dedupe_days"]["description"].clone();
        props.insert(
            "dedupe_days".into(),
            json!({"type": "integer", "format": "int32", "minimum": min_days, "maximum": max_days,
                   "description": days_description}),
        );
        merge(
            &mut props["platform"],
            json!({"$ref": "#/components/schemas/Platform", "type": null}),
        );
        merge(
            &mut props["format"],
            text(json!({"enum": ["csv", "xlsx", "json"]})),
        );
        merge(
            &mut props["encoding"],
            text(json!({"enum": ["utf-8", "utf-16le", "utf-16be", "windows-1251", "cp1251"]})),
        );
        merge(
            &mut props["delimiter"],
            text(json!({"pattern": r"^(?:[\x21-\x7E]|tab|\\t)$"})),
        );
        props.insert(
            "default_country".into(),
            json!({"$ref": "#/components/schemas/Country"}),
        );
        for (name, prop) in props.iter_mut() {
            if name.ends_with("_column") {
                // A header name, or a position from 1 (blank: not given).
                merge(
                    prop,
                    // Refused: blank, or only zeros (and blanks around them).
                    json!({"maxLength": 255,
                           "pattern": format!("[^0{BLANK}]|0[{BLANK}]+0")}),
                );
            } else if name != "file"
                && prop["type"] == "string"
                && ["enum", "pattern", "format"]
                    .iter()
                    .all(|k| prop.get(*k).is_none())
            {
                merge(prop, json!({"maxLength": 255, "pattern": not_blank()}));
            }
        }
    }
    form["additionalProperties"] = Value::Bool(false);
    let form = form.clone();
    schemas(doc).remove("ImportForm");
    let forms: [(&str, &str, &[&str], &str); 3] = [
        (
            "ImportFileForm",
            "import~1file",
            &IMPORT_FILE_FIELDS,
            "/import/file",
        ),
        (
            "ValidateFileForm",
            "import~1validate",
            &VALIDATE_FILE_FIELDS,
            "/import/validate",
        ),
        (
            "SuppressFileForm",
            "suppressions~1file",
            &SUPPRESS_FILE_FIELDS,
            "/suppressions/file",
        ),
    ];
    for (name, path, extra, route) in forms {
        let mut f = form.clone();
        if let Some(props) = f["properties"].as_object_mut() {
            props.retain(|k, _| {
                k == "file" || READ_FIELDS.contains(&k.as_str()) || extra.contains(&k.as_str())
            });
        }
        f["description"] = json!(format!("The multipart form of `{route}`."));
        if route == "/import/file" {
            f["required"] = json!(["file", "task_id"]);
        }
        schemas(doc).insert(name.into(), f);
        if let Some(schema) = doc.pointer_mut(&format!(
            "/paths/~1api~1v1~1invite~1{path}/post/requestBody/content/multipart~1form-data/schema"
        )) {
            *schema = reference(name);
        }
    }
}

fn refine_parameters(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let (min_days, max_days) = (*DEDUPE_DAYS.start(), *DEDUPE_DAYS.end());
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params.iter_mut() {
                let name = p["name"].as_str().unwrap_or_default().to_owned();
                let schema = match (name.as_str(), p["in"].as_str().unwrap_or_default()) {
                    ("id", "path") => json!({"type": "integer", "format": "int64", "minimum": 1}),
                    ("task_id", "query") => {
                        json!({"type": "integer", "format": "int64", "minimum": 1})
                    }
                    ("platform", "query") => reference("Platform"),
                    ("status", "query") if path.ends_with("/logs") => reference("ExecutionStatus"),
                    ("status", "query") => reference("TaskStatus"),
                    ("format", "query") => json!({"type": "string", "enum": ["json", "csv"]}),
                    ("default_country", "query") => reference("Country"),
                    ("dedupe_days", "query") => json!({"type": "integer", "format": "int32",
                                                       "minimum": min_days, "maximum": max_days}),
                    ("account_id", "query") => json!({"type": "string", "minLength": 1,
                        "maxLength": 255, "pattern": format!(r"^[^{BLANK}\x00-\x1F\x7F-\x9F]+$")}),
                    ("identifier", "query") => {
                        json!({"type": "string", "pattern": IDENTIFIER_PATTERN})
                    }
                    ("identifiers", "query") => {
                        p["required"] = Value::Bool(true);
                        json!({"type": "string", "pattern": format!("[^,{BLANK}]")})
                    }
                    ("Idempotency-Key", "header") => json!({"type": "string",
                        "pattern": "^[\\x21-\\x7E]{1,255}$"}),
                    _ => continue,
                };
                let _ = method;
                p["schema"] = schema;
            }
        }
    }
}

/// `CreateTaskBody` becomes one object per action, told apart by `action`.
fn split_create_body(doc: &mut Value) {
    let s = schemas(doc);
    let Some(base) = s.get("CreateTaskBody").cloned() else {
        return;
    };
    let variants = [
        ("InviteTaskBody", "invite", true, false),
        ("MessageTaskBody", "message", false, true),
        ("InviteAndMessageTaskBody", "invite_and_message", true, true),
    ];
    let mut refs = Vec::new();
    let mut mapping = Map::new();
    for (name, action, group, template) in variants {
        let mut v = base.clone();
        v["description"] = json!(format!("A task to create with `action: {action}`."));
        v["properties"]["action"] = json!({"type": "string", "enum": [action]});
        let mut required: Vec<Value> = v["required"].as_array().cloned().unwrap_or_default();
        for (field, needed) in [("group", group), ("template", template)] {
            let prop = &mut v["properties"][field];
            if needed {
                // Required, and not `null`.
                let inner = prop["oneOf"][0].clone();
                let description = prop["description"].clone();
                *prop = inner;
                prop["description"] = description;
                required.push(json!(field));
            } else {
                *prop = json!({"type": "null", "description": format!("Not used by `{action}`.")});
            }
        }
        v["required"] = Value::Array(required);
        s.insert(name.into(), v);
        refs.push(reference(name));
        mapping.insert(action.into(), json!(format!("#/components/schemas/{name}")));
    }
    s.insert(
        "CreateTaskBody".into(),
        json!({
            "description": "A task to create: `invite` needs `group`, `message` needs `template`, `invite_and_message` both.",
            "oneOf": refs,
            "discriminator": {"propertyName": "action", "mapping": mapping}
        }),
    );
}

/// Adds, to every operation, the statuses it can answer that its derive does not list.
fn document_statuses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, op) in item.iter_mut() {
            let content = op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
                .map(|c| c.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            let json_body = content.iter().any(|c| c == "application/json");
            let multipart = content.iter().any(|c| c == "multipart/form-data");
            let secured = op.get("security").is_some();
            let has_query = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let has_id = path.contains("{id}");
            let mut add = Vec::new();
            if json_body {
                add.push((400, "The body is not JSON"));
                add.push((413, "The body is larger than 2 MiB"));
                add.push((
                    415,
                    "The body is not sent as `Content-Type: application/json`",
                ));
                add.push((422, "The body is JSON but breaks the schema"));
            }
            if multipart {
                add.push((400, "The multipart form is broken (boundary, part headers)"));
                add.push((413, "The file is larger than the upload limit"));
                add.push((415, "The body is not sent as `multipart/form-data`"));
                add.push((422, "An invalid form field or an unreadable file"));
            }
            if secured {
                add.push((401, "No valid token"));
            }
            if has_query {
                add.push((422, "An invalid query parameter"));
            }
            if has_id {
                add.push((404, "No such task of the caller"));
            }
            add.push((414, "The request target is longer than 8 KiB"));
            add.push((431, "Too many or too large request header fields"));
            add.push((500, "An unexpected failure, logged under `error_id`"));
            if secured {
                add.push((503, "A dependency (the store) is unavailable"));
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, description) in add {
                responses.entry(status.to_string()).or_insert_with(|| {
                    json!({
                        "description": description,
                        "content": {PROBLEM_JSON: {"schema": reference("Problem")}}
                    })
                });
            }
        }
    }
}

/// Links from the task created by `POST /tasks` to every operation on `/tasks/{id}`, so that
/// clients and the stateful tests can follow them.
fn link_created_task(doc: &mut Value) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    let mut links = Map::new();
    for (path, item) in paths {
        if !path.contains("/tasks/{id}") {
            continue;
        }
        for (method, op) in item.as_object().into_iter().flatten() {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            let _ = method;
            links.insert(
                id.to_owned(),
                json!({"operationId": id, "parameters": {"id": "$response.body#/task/id"}}),
            );
        }
    }
    for status in ["200", "201"] {
        if let Some(r) = doc.pointer_mut(&format!(
            "/paths/~1api~1v1~1invite~1tasks/post/responses/{status}"
        )) {
            r["links"] = Value::Object(links.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use invite_core::domain::{AccountId, GroupRef, NormalizeOptions, TargetIdentifier, Template};
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    fn regex(pattern: &str) -> Regex {
        Regex::new(pattern).expect("a pattern of the document compiles")
    }

    /// Strings matching an anchored pattern of the document.
    fn generated(pattern: &str) -> impl Strategy<Value = String> + use<> {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .expect("an anchored pattern");
        proptest::string::string_regex(inner).expect("a pattern proptest can generate from")
    }

    /// Strings of pieces that make templates interesting: braces, variables, fallbacks and
    /// characters that are blank for Rust but not for every regex engine (U+001C).
    fn template_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{"),
            Just("}"),
            Just("|"),
            Just(" "),
            Just("\u{1c}"),
            Just("\u{2003}"),
            Just("x"),
            Just("username"),
            Just("first_name"),
            Just("nickname"),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The document's template rule is the parser's, both ways.
        #[test]
        fn the_template_pattern_is_the_parser(s in template_like()) {
            let documented = regex(&template_pattern()).is_match(&s);
            prop_assert_eq!(documented, Template::parse(&s).is_ok(), "{:?}", s);
        }

        /// What the identifier pattern promises, Telegram and the sandbox accept.
        #[test]
        fn documented_identifiers_are_accepted(s in generated(IDENTIFIER_PATTERN)) {
            for platform in [Platform::Telegram, Platform::Sandbox] {
                let parsed = TargetIdentifier::parse(&s, platform, &NormalizeOptions::default());
                prop_assert!(parsed.is_ok(), "{:?} on {}: {:?}", s, platform, parsed);
            }
        }

        /// What the group pattern promises, the parser accepts.
        #[test]
        fn documented_groups_are_accepted(s in generated(GROUP_PATTERN)) {
            prop_assert!(GroupRef::parse(&s).is_ok(), "{:?}", s);
        }

        /// The account id rule is the parser's, both ways.
        #[test]
        fn the_account_pattern_is_the_parser(s in "[a-z \\t\\u{0}\\u{85}\\u{a0}\\u{1c}é]{0,8}") {
            let pattern = format!(r"^[^{BLANK}\x00-\x1F\x7F-\x9F]+$");
            prop_assert_eq!(regex(&pattern).is_match(&s), AccountId::parse(s.clone()).is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn a_column_is_a_name_or_a_position_from_one() {
        let column = regex(&format!("[^0{BLANK}]|0[{BLANK}]+0"));
        for ok in ["1", "01", "username", "0 0", "a0"] {
            assert!(column.is_match(ok), "{ok}");
        }
        for refused in ["0", "000", " 0 ", "", "  "] {
            assert!(!column.is_match(refused), "{refused:?}");
        }
    }

    #[test]
    fn blank_is_rusts_whitespace() {
        let blank = regex(&format!("^[{BLANK}]$"));
        for c in '\0'..='\u{3000}' {
            assert_eq!(
                blank.is_match(&c.to_string()),
                c.is_whitespace(),
                "U+{:04X}",
                c as u32
            );
        }
    }
}
