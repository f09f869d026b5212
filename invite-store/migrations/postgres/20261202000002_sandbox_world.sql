-- The sandbox platform's world (invite_core::sandbox::SandboxWorld), kept so that an embedded
-- restart settles uncertain invites and resent messages against what was really delivered.

-- Group memberships: channel is GroupRef::channel_key(), person TargetIdentifier::dedupe_key().
CREATE TABLE invite_sandbox_members (
    channel    TEXT        NOT NULL,
    person     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, person)
);

-- Delivered messages: Telegram de-duplicates random_id per sending account only.
CREATE TABLE invite_sandbox_messages (
    account_id VARCHAR(255) NOT NULL,
    random_id  BIGINT       NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, random_id)
);
