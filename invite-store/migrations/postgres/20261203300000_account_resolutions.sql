-- What each registered account resolved (invite_core::ports::Resolution): access hashes are
-- valid for one account only, so they are kept per account, and a restart does not resolve
-- everything again. `subject` is the target or group as the adapter spells it.
-- Times are microseconds since the Unix epoch, the same on both backends.
CREATE TABLE IF NOT EXISTS invite_account_resolutions (
    account_id  VARCHAR(255) NOT NULL,
    subject     TEXT    NOT NULL,
    peer_id     BIGINT  NOT NULL,
    access_hash BIGINT  NOT NULL,
    resolved_at BIGINT  NOT NULL,
    PRIMARY KEY (account_id, subject)
);

-- Uses of an account's rolling daily budgets (`resolve`: username resolutions, `import`:
-- phone imports); uses older than two days are deleted as new ones are recorded.
CREATE TABLE IF NOT EXISTS invite_account_spends (
    account_id  VARCHAR(255) NOT NULL,
    budget      VARCHAR(32)  NOT NULL,
    at          BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS invite_account_spends_by_account
    ON invite_account_spends (account_id, budget, at);
