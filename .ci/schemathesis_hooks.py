"""Schemathesis hooks of the contract test (`.ci/run`, `schemathesis.toml`).

The OpenAPI document states every rule JSON Schema can express. A few rules it can only state
in words, because they depend on something outside the request's own schema:

- `scheduled_at` is at most 366 days after *now* (the clock);
- which identifier kinds a platform accepts (`whatsapp`: phones only; `instagram`: no phones):
  a rule between two fields;
- an update's `group` and `template` against the *stored* task's action;
- an `Idempotency-Key` reused with another body (the key's first request is stored);
- an uploaded file's content (format, columns, cells), and an upload form's column mapping
  that names only name columns (a rule between fields);
- `POST /suppressions`: `identifier` and `identifiers` together count against the cap;
- `POST /accounts`: whether a session string or `.session` file is one Telegram issued, and
  the default `api_id` / `api_hash` of the server's configuration (none in CI);
- `POST /import/parsing` answers 503 when no Parsing Service is configured (as in CI).

A failure is dropped here only when the server's own problem document names one of these
rules, field by field; anything else fails the run.

Two inputs are also made realistic before they are sent, so that these rules refuse as few
generated requests as possible and the rest of each request is really checked: a valid
`Idempotency-Key` is made unique (a client never reuses one for another body), and the file of
an upload is a small CSV (file parsing is fuzzed by the import property tests of invite-core).
"""

import json
import re
import uuid

import schemathesis
from hypothesis.internal import lambda_sources

# Hypothesis names each filter of a strategy by parsing the filter's source with `ast.parse`;
# deep in Schemathesis' generator, CPython 3.11 can raise `SystemError: AST constructor
# recursion depth mismatch` there, which ends the operation's run with a tool error though
# nothing was sent. The name is only the strategy's repr: fall back to Hypothesis' own
# "unknown" description instead. No check of the API is affected.
_describe_lambda = lambda_sources._lambda_description


def _lambda_description_or_unknown(f):
    try:
        return _describe_lambda(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description_or_unknown

UPLOADS = {
    "POST /api/v1/invite/import/file",
    "POST /api/v1/invite/import/validate",
    "POST /api/v1/invite/suppressions/file",
}
UPDATE = "PUT /api/v1/invite/tasks/{id}"
PARSING = "POST /api/v1/invite/import/parsing"
ADD_ACCOUNT = "POST /api/v1/invite/accounts"

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7E]{1,255}")
CSV_FILE = b"username,first_name\n@alice_example,Alice\n@bob_example,Bob\n"

# File-level problem types of an upload (the file's content, not the form).
FILE_PROBLEMS = {
    "urn:invite:problem:unreadable-file",
    "urn:invite:problem:too-many-columns",
    "urn:invite:problem:cell-too-long",
}


def _problem(response):
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return None


def _stated_in_words(label, body, field, message):
    if field == "scheduled_at" and "days ahead" in message:
        return True
    if re.fullmatch(r"(targets|identifiers)\[\d+\]|identifier", field) and "does not accept" in message:
        return True
    if label == ADD_ACCOUNT and (
        field in ("session", "file")
        or (field in ("api_id", "api_hash") and "is required (or set TELEGRAM_" in message)
    ):
        # Whether a session (string or file) is one Telegram issued, and the server's
        # default application credentials (none in CI).
        return True
    if label == UPDATE and field in ("group", "template") and (
        "is required for this action" in message or "is not used by" in message
    ):
        return True
    if (
        field == "identifiers"
        and "max_targets_per_task" in message
        and "identifier" in body
        and "identifiers" in body
    ):
        # `identifier` and `identifiers` together over the cap: each alone is within it.
        return True
    return False


def _excused(failure, case, response):
    label = case.operation.label
    problem = _problem(response)
    if not isinstance(problem, dict):
        return False
    kind = problem.get("type")
    if label == PARSING and kind == "urn:invite:problem:not-configured":
        # No Parsing Service here: the answer says nothing about the request.
        return True
    if failure.code != "ST202" or response.status_code != 422:
        return False
    if kind == "urn:invite:problem:idempotency-mismatch":
        return True
    if label in UPLOADS and kind in FILE_PROBLEMS:
        return True
    errors = problem.get("errors") or []
    body = case.body if isinstance(case.body, dict) else {}
    return bool(errors) and all(
        _stated_in_words(label, body, e.get("field", ""), e.get("message", "")) for e in errors
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not _excused(failure, case, response)


@schemathesis.hook
def map_case(context, case):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    if case.operation.label in UPLOADS and isinstance(case.body, dict):
        file = case.body.get("file")
        # Generated files are text, bytes, or schemathesis' own `Binary` wrapper of bytes.
        if isinstance(file, (str, bytes, bytearray)) or type(file).__name__ == "Binary":
            case.body["file"] = CSV_FILE
    return case
