-- Invite Service schema (PostgreSQL). The seed's tables and indexes, plus what the engine needs:
-- target results, a unique normalised identifier per task, the local account manager's ledger,
-- the suppression list, idempotency keys and account leases. No limit or delay columns live on
-- tasks or targets: limits belong to the ledger alone.

CREATE TYPE taskstatus AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'PAUSED');
CREATE TYPE taskpriority AS ENUM ('LOW', 'MEDIUM', 'HIGH');
CREATE TYPE targetsource AS ENUM ('MANUAL', 'FILE_UPLOAD', 'PARSING_IMPORT');
CREATE TYPE executionstatus AS ENUM ('PENDING', 'SUCCESS', 'FAILED', 'SKIPPED');

CREATE TABLE invite_tasks (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT       NOT NULL,
    name            TEXT         NOT NULL,
    platform        VARCHAR(50)  NOT NULL
                    CHECK (platform IN ('telegram', 'instagram', 'whatsapp', 'sandbox')),
    status          taskstatus   NOT NULL DEFAULT 'PENDING',
    status_reason   TEXT,
    priority        taskpriority NOT NULL DEFAULT 'MEDIUM',
    settings        JSONB        NOT NULL,
    -- settings.action.channel_key(): the group (or `dm`), for de-duplication across tasks.
    channel_key     TEXT         NOT NULL,
    scheduled_at    TIMESTAMPTZ,
    start_requested BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);

CREATE INDEX idx_invite_tasks_user_status ON invite_tasks (user_id, status);
CREATE INDEX idx_invite_tasks_engine ON invite_tasks (id)
    WHERE status = 'IN_PROGRESS' OR start_requested;
CREATE INDEX idx_invite_tasks_finished ON invite_tasks (finished_at)
    WHERE finished_at IS NOT NULL;

CREATE TABLE invite_targets (
    id              BIGSERIAL PRIMARY KEY,
    task_id         BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    identifier_kind VARCHAR(16)  NOT NULL CHECK (identifier_kind IN ('username', 'user_id', 'phone')),
    -- Normalised value (username without @, numeric id, E.164 phone).
    identifier      VARCHAR(255) NOT NULL,
    -- TargetIdentifier::dedupe_key(): `u:name`, `i:123`, `p:+7…`.
    identifier_key  VARCHAR(260) NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    full_name       TEXT,
    email           TEXT,
    source          targetsource NOT NULL DEFAULT 'MANUAL',
    status          VARCHAR(20)  NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'success', 'failed', 'skipped', 'uncertain')),
    outcome         VARCHAR(50),
    account_id      VARCHAR(255),
    random_id       BIGINT,
    attempts        INTEGER      NOT NULL DEFAULT 0,
    error_message   TEXT,
    result          JSONB        NOT NULL DEFAULT '{}',
    claimed_at      TIMESTAMPTZ,
    processed_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT uq_invite_targets_task_identifier UNIQUE (task_id, identifier_key)
);

-- The seed's (task_id, status) index, with id appended so a claim reads the lowest pending id
-- straight from the index.
CREATE INDEX idx_invite_targets_task_status ON invite_targets (task_id, status, id);
CREATE INDEX idx_invite_targets_claimed ON invite_targets (claimed_at)
    WHERE status = 'in_progress';
CREATE INDEX idx_invite_targets_reached ON invite_targets (identifier_key, processed_at)
    WHERE status = 'success';

-- Lanes: one row per (task, account).
CREATE TABLE invite_task_accounts (
    id             BIGSERIAL PRIMARY KEY,
    task_id        BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    account_id     VARCHAR(255) NOT NULL,
    status         VARCHAR(20)  NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    reason         TEXT,
    cooldown_until TIMESTAMPTZ,
    last_used_at   TIMESTAMPTZ,
    stats          JSONB        NOT NULL,
    CONSTRAINT uq_invite_task_accounts UNIQUE (task_id, account_id)
);

CREATE TABLE invite_execution_logs (
    id         BIGSERIAL PRIMARY KEY,
    task_id    BIGINT          NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    target_id  BIGINT          REFERENCES invite_targets (id) ON DELETE CASCADE,
    account_id VARCHAR(255)    NOT NULL,
    action     VARCHAR(100)    NOT NULL,
    status     executionstatus NOT NULL,
    outcome    VARCHAR(50),
    error_kind TEXT,
    error_code TEXT,
    latency_ms BIGINT,
    created_at TIMESTAMPTZ     NOT NULL DEFAULT now()
);

CREATE INDEX idx_invite_logs_task_created ON invite_execution_logs (task_id, created_at);
CREATE INDEX idx_invite_logs_created ON invite_execution_logs (created_at);
CREATE INDEX idx_invite_logs_target ON invite_execution_logs (target_id);

-- Ledger of the local account manager: account health, one row per reservation, one event per
-- reserved action kind, and lifetime totals per (account, channel, kind).
CREATE TABLE invite_ledger_accounts (
    account_id VARCHAR(255) PRIMARY KEY,
    state      VARCHAR(16)  NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cooling', 'dead')),
    until      TIMESTAMPTZ,
    reason     TEXT,
    CHECK (state <> 'cooling' OR until IS NOT NULL)
);

CREATE TABLE invite_ledger_reservations (
    id         BIGSERIAL PRIMARY KEY,
    account_id VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL
);

CREATE TABLE invite_ledger_events (
    id              BIGSERIAL PRIMARY KEY,
    reservation_id  BIGINT       NOT NULL REFERENCES invite_ledger_reservations (id) ON DELETE CASCADE,
    account_id      VARCHAR(255) NOT NULL,
    kind            VARCHAR(16)  NOT NULL CHECK (kind IN ('invite', 'message')),
    channel         TEXT         NOT NULL,
    at              TIMESTAMPTZ  NOT NULL,
    not_before_next TIMESTAMPTZ  NOT NULL
);

CREATE INDEX idx_invite_ledger_events_account_at ON invite_ledger_events (account_id, at);
CREATE INDEX idx_invite_ledger_events_reservation ON invite_ledger_events (reservation_id);

CREATE TABLE invite_ledger_lifetime (
    account_id VARCHAR(255) NOT NULL,
    channel    TEXT         NOT NULL,
    kind       VARCHAR(16)  NOT NULL CHECK (kind IN ('invite', 'message')),
    count      BIGINT       NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (account_id, channel, kind)
);

-- People a user must never contact, per platform.
CREATE TABLE invite_suppressions (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT       NOT NULL,
    platform       VARCHAR(50)  NOT NULL,
    identifier_key VARCHAR(260) NOT NULL,
    reason         TEXT         NOT NULL,
    created_at     TIMESTAMPTZ  NOT NULL,
    CONSTRAINT uq_invite_suppressions UNIQUE (user_id, platform, identifier_key)
);

-- Idempotency keys of task creation, per user; removed with their task.
CREATE TABLE invite_idempotency_keys (
    user_id      BIGINT       NOT NULL,
    key          TEXT         NOT NULL,
    request_hash TEXT         NOT NULL,
    task_id      BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idx_invite_idempotency_task ON invite_idempotency_keys (task_id);

-- One worker process drives an account at a time.
CREATE TABLE invite_account_leases (
    account_id VARCHAR(255) PRIMARY KEY,
    holder     VARCHAR(255) NOT NULL,
    expires_at TIMESTAMPTZ  NOT NULL
);
