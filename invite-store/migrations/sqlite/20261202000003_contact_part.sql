-- Adding a person to the account's contacts is a write of its own (SQLite; mirrors the
-- PostgreSQL migration): paced like every write, budgeted in the ledger as kind `contact`, and
-- remembered on the target so its invite or message follows through the same account. SQLite
-- cannot change a CHECK constraint, so the two ledger tables that name the kinds are rebuilt.

-- `Target::contact_added`: the person is in the contacts of `sender_account`, which acts next.
ALTER TABLE invite_targets ADD COLUMN contact_added INTEGER NOT NULL DEFAULT 0;

CREATE TABLE invite_ledger_events_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reservation_id  INTEGER NOT NULL REFERENCES invite_ledger_reservations (id) ON DELETE CASCADE,
    account_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('invite', 'message', 'contact')),
    channel         TEXT    NOT NULL,
    at              TEXT    NOT NULL,
    not_before_next TEXT    NOT NULL
);
INSERT INTO invite_ledger_events_new
    (id, reservation_id, account_id, kind, channel, at, not_before_next)
    SELECT id, reservation_id, account_id, kind, channel, at, not_before_next
    FROM invite_ledger_events;
DROP TABLE invite_ledger_events;
ALTER TABLE invite_ledger_events_new RENAME TO invite_ledger_events;
CREATE INDEX IF NOT EXISTS idx_invite_ledger_events_account_at ON invite_ledger_events (account_id, at);
CREATE INDEX IF NOT EXISTS idx_invite_ledger_events_reservation ON invite_ledger_events (reservation_id);

CREATE TABLE invite_ledger_lifetime_new (
    account_id TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('invite', 'message', 'contact')),
    count      INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (account_id, channel, kind)
);
INSERT INTO invite_ledger_lifetime_new (account_id, channel, kind, count)
    SELECT account_id, channel, kind, count FROM invite_ledger_lifetime;
DROP TABLE invite_ledger_lifetime;
ALTER TABLE invite_ledger_lifetime_new RENAME TO invite_ledger_lifetime;
