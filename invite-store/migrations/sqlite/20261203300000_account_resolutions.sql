-- What each registered account resolved (invite_core::ports::Resolution): access hashes are
-- valid for one account only, so they are kept per account, and a restart does not resolve
-- everything again. `subject` is the target or group as the adapter spells it.
-- Times are microseconds since the Unix epoch, the same on both backends.
CREATE TABLE IF NOT EXISTS invite_account_resolutions (
    account_id  TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    peer_id     INTEGER NOT NULL,
    access_hash INTEGER NOT NULL,
    resolved_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, subject)
);

-- Uses of an account's rolling daily budgets (`resolve`: username resolutions, `import`:
-- phone imports); uses older than two days are deleted as new ones are recorded.
CREATE TABLE IF NOT EXISTS invite_account_spends (
    account_id  TEXT    NOT NULL,
    budget      TEXT    NOT NULL,
    at          INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS invite_account_spends_by_account
    ON invite_account_spends (account_id, budget, at);
