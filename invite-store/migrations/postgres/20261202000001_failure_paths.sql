-- Failure paths of the engine (PostgreSQL): who holds a claim and whether it is still alive,
-- which account a target is pinned to once its message may have left, and the confirmed
-- invite of an `invite_and_message` target whose message is still to come. `random_id`s
-- become unique: a claim derives them from the target id (see `message_random_id`).

-- The worker process holding an `in_progress` claim (`Claim::holder`); cleared when the
-- target leaves `in_progress`.
ALTER TABLE invite_targets ADD COLUMN holder VARCHAR(255);
-- `Target::sender`: the only account that may act on the target again (a message that may
-- have been sent through it, or the message following its confirmed invite).
ALTER TABLE invite_targets ADD COLUMN sender_account VARCHAR(255);
-- `Target::invite_outcome`: the confirmed invite of an `invite_and_message` target.
ALTER TABLE invite_targets ADD COLUMN invite_outcome VARCHAR(50);

-- Heartbeats of the worker processes: claims of a holder whose `seen_at` is older than the
-- engine's horizon (or that has no row) are recovered as `uncertain`.
CREATE TABLE invite_workers (
    holder  VARCHAR(255) PRIMARY KEY,
    seen_at TIMESTAMPTZ  NOT NULL
);

-- The platform de-duplicates a message by `random_id`: two targets must never share one.
CREATE UNIQUE INDEX uq_invite_targets_random_id ON invite_targets (random_id)
    WHERE random_id IS NOT NULL;
-- Pending targets pinned to an account, per task: follow-up claims, `has_followup` and
-- `abandon_pinned`.
CREATE INDEX idx_invite_targets_pinned ON invite_targets (task_id, sender_account, id)
    WHERE status = 'pending' AND sender_account IS NOT NULL;
-- Claims per holder: recovery looks up the claims of silent holders.
CREATE INDEX idx_invite_targets_holder ON invite_targets (holder)
    WHERE status = 'in_progress';
