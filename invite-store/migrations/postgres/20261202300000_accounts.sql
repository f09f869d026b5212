-- The account registry (invite_core::ports::AccountRegistry): accounts users gave this service
-- in embedded mode. `sealed` holds the session and api credentials encrypted with an AEAD by the
-- caller; nothing here is a secret in the clear. `key_id` is a public identifier of the session
-- key (MTProto sends it in the clear with every message), used only to refuse a key twice.
-- Times are microseconds since the Unix epoch, the same on both backends.
CREATE TABLE invite_accounts (
    id               VARCHAR(255) PRIMARY KEY,
    user_id          BIGINT       NOT NULL,
    platform         VARCHAR(32)  NOT NULL,
    label            TEXT,
    platform_user_id BIGINT,
    username         TEXT,
    phone_masked     TEXT,
    key_id           TEXT         NOT NULL,
    sealed           BYTEA        NOT NULL,
    status           VARCHAR(32)  NOT NULL,
    status_until     BIGINT,
    status_reason    TEXT,
    created_at       BIGINT       NOT NULL,
    last_used_at     BIGINT,
    UNIQUE (platform, key_id),
    UNIQUE (platform, platform_user_id)
);

CREATE INDEX invite_accounts_owner ON invite_accounts (user_id, platform, created_at);
