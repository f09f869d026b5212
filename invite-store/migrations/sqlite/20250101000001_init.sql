-- Invite Service schema (SQLite). Mirrors the PostgreSQL schema: enum types become TEXT with
-- CHECK constraints, JSONB becomes TEXT holding JSON, timestamps are TEXT in one fixed-width
-- UTC form (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, written by the store) so that they compare in order.

CREATE TABLE IF NOT EXISTS invite_tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    platform        TEXT    NOT NULL
                    CHECK (platform IN ('telegram', 'instagram', 'whatsapp', 'sandbox')),
    status          TEXT    NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'PAUSED')),
    status_reason   TEXT,
    priority        TEXT    NOT NULL DEFAULT 'MEDIUM' CHECK (priority IN ('LOW', 'MEDIUM', 'HIGH')),
    settings        TEXT    NOT NULL CHECK (json_valid(settings)),
    channel_key     TEXT    NOT NULL,
    scheduled_at    TEXT,
    start_requested INTEGER NOT NULL DEFAULT 0 CHECK (start_requested IN (0, 1)),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);

CREATE INDEX IF NOT EXISTS idx_invite_tasks_user_status ON invite_tasks (user_id, status);
CREATE INDEX IF NOT EXISTS idx_invite_tasks_engine ON invite_tasks (id)
    WHERE status = 'IN_PROGRESS' OR start_requested = 1;
CREATE INDEX IF NOT EXISTS idx_invite_tasks_finished ON invite_tasks (finished_at)
    WHERE finished_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS invite_targets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    identifier_kind TEXT    NOT NULL CHECK (identifier_kind IN ('username', 'user_id', 'phone')),
    identifier      TEXT    NOT NULL,
    identifier_key  TEXT    NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    full_name       TEXT,
    email           TEXT,
    source          TEXT    NOT NULL DEFAULT 'MANUAL'
                    CHECK (source IN ('MANUAL', 'FILE_UPLOAD', 'PARSING_IMPORT')),
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'success', 'failed', 'skipped', 'uncertain')),
    outcome         TEXT,
    account_id      TEXT,
    random_id       INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error_message   TEXT,
    result          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(result)),
    claimed_at      TEXT,
    processed_at    TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (task_id, identifier_key)
);

CREATE INDEX IF NOT EXISTS idx_invite_targets_task_status ON invite_targets (task_id, status, id);
CREATE INDEX IF NOT EXISTS idx_invite_targets_claimed ON invite_targets (claimed_at)
    WHERE status = 'in_progress';
CREATE INDEX IF NOT EXISTS idx_invite_targets_reached ON invite_targets (identifier_key, processed_at)
    WHERE status = 'success';

CREATE TABLE IF NOT EXISTS invite_task_accounts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id        INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    account_id     TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    reason         TEXT,
    cooldown_until TEXT,
    last_used_at   TEXT,
    stats          TEXT    NOT NULL CHECK (json_valid(stats)),
    UNIQUE (task_id, account_id)
);

CREATE TABLE IF NOT EXISTS invite_execution_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    target_id  INTEGER REFERENCES invite_targets (id) ON DELETE CASCADE,
    account_id TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('PENDING', 'SUCCESS', 'FAILED', 'SKIPPED')),
    outcome    TEXT,
    error_kind TEXT,
    error_code TEXT,
    latency_ms INTEGER,
    created_at TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_invite_logs_task_created ON invite_execution_logs (task_id, created_at);
CREATE INDEX IF NOT EXISTS idx_invite_logs_created ON invite_execution_logs (created_at);
CREATE INDEX IF NOT EXISTS idx_invite_logs_target ON invite_execution_logs (target_id);

CREATE TABLE IF NOT EXISTS invite_ledger_accounts (
    account_id TEXT PRIMARY KEY,
    state      TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cooling', 'dead')),
    until      TEXT,
    reason     TEXT,
    CHECK (state <> 'cooling' OR until IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS invite_ledger_reservations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS invite_ledger_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reservation_id  INTEGER NOT NULL REFERENCES invite_ledger_reservations (id) ON DELETE CASCADE,
    account_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('invite', 'message')),
    channel         TEXT    NOT NULL,
    at              TEXT    NOT NULL,
    not_before_next TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_invite_ledger_events_account_at ON invite_ledger_events (account_id, at);
CREATE INDEX IF NOT EXISTS idx_invite_ledger_events_reservation ON invite_ledger_events (reservation_id);

CREATE TABLE IF NOT EXISTS invite_ledger_lifetime (
    account_id TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('invite', 'message')),
    count      INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (account_id, channel, kind)
);

CREATE TABLE IF NOT EXISTS invite_suppressions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL,
    platform       TEXT    NOT NULL,
    identifier_key TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    UNIQUE (user_id, platform, identifier_key)
);

CREATE TABLE IF NOT EXISTS invite_idempotency_keys (
    user_id      INTEGER NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    task_id      INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX IF NOT EXISTS idx_invite_idempotency_task ON invite_idempotency_keys (task_id);

CREATE TABLE IF NOT EXISTS invite_account_leases (
    account_id TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
