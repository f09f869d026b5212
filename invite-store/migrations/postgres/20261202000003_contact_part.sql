-- Adding a person to the account's contacts is a write of its own (SQL of the PostgreSQL
-- store): paced like every write, budgeted in the ledger as kind `contact`, and remembered on
-- the target so its invite or message follows through the same account.

-- `Target::contact_added`: the person is in the contacts of `sender_account`, which acts next.
ALTER TABLE invite_targets ADD COLUMN contact_added BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE invite_ledger_events DROP CONSTRAINT IF EXISTS invite_ledger_events_kind_check;
ALTER TABLE invite_ledger_events ADD CONSTRAINT invite_ledger_events_kind_check
    CHECK (kind IN ('invite', 'message', 'contact'));
ALTER TABLE invite_ledger_lifetime DROP CONSTRAINT IF EXISTS invite_ledger_lifetime_kind_check;
ALTER TABLE invite_ledger_lifetime ADD CONSTRAINT invite_ledger_lifetime_kind_check
    CHECK (kind IN ('invite', 'message', 'contact'));
