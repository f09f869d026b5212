-- The sandbox platform's world (invite_core::sandbox::SandboxWorld), kept so that an embedded
-- restart settles uncertain invites and resent messages against what was really delivered.
-- created_at is bookkeeping in the store's fixed-width UTC form (`%f` gives milliseconds).

-- Group memberships: channel is GroupRef::channel_key(), person TargetIdentifier::dedupe_key().
CREATE TABLE IF NOT EXISTS invite_sandbox_members (
    channel    TEXT NOT NULL,
    person     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (channel, person)
);

-- Delivered messages: Telegram de-duplicates random_id per sending account only.
CREATE TABLE IF NOT EXISTS invite_sandbox_messages (
    account_id TEXT    NOT NULL,
    random_id  INTEGER NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (account_id, random_id)
);
