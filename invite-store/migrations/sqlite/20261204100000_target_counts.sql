-- Per-task counts of targets by (status, outcome), kept by triggers in the transaction of every
-- statement that inserts, updates or deletes targets: a task's progress, its pending count and
-- "is anything pending" read a few rows here instead of aggregating the task's targets.
-- `outcome` is '' for a target without one. (SQLite has one writer at a time: no slots, unlike
-- the PostgreSQL table of the same name.)
CREATE TABLE IF NOT EXISTS invite_target_counts (
    task_id INTEGER NOT NULL,
    status  TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (task_id, status, outcome)
) WITHOUT ROWID;

INSERT INTO invite_target_counts (task_id, status, outcome, n)
SELECT task_id, status, COALESCE(outcome, ''), count(*)
FROM invite_targets GROUP BY task_id, status, COALESCE(outcome, '');

CREATE TRIGGER IF NOT EXISTS invite_targets_count_insert AFTER INSERT ON invite_targets
BEGIN
    INSERT INTO invite_target_counts (task_id, status, outcome, n)
    VALUES (NEW.task_id, NEW.status, COALESCE(NEW.outcome, ''), 1)
    ON CONFLICT (task_id, status, outcome) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS invite_targets_count_update AFTER UPDATE OF status, outcome
    ON invite_targets
    WHEN OLD.status IS NOT NEW.status OR OLD.outcome IS NOT NEW.outcome
BEGIN
    UPDATE invite_target_counts SET n = n - 1
    WHERE task_id = OLD.task_id AND status = OLD.status AND outcome = COALESCE(OLD.outcome, '');
    INSERT INTO invite_target_counts (task_id, status, outcome, n)
    VALUES (NEW.task_id, NEW.status, COALESCE(NEW.outcome, ''), 1)
    ON CONFLICT (task_id, status, outcome) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS invite_targets_count_delete AFTER DELETE ON invite_targets
BEGIN
    UPDATE invite_target_counts SET n = n - 1
    WHERE task_id = OLD.task_id AND status = OLD.status AND outcome = COALESCE(OLD.outcome, '');
END;

-- A deleted task's counts go with it.
CREATE TRIGGER IF NOT EXISTS invite_tasks_delete_counts AFTER DELETE ON invite_tasks
BEGIN
    DELETE FROM invite_target_counts WHERE task_id = OLD.id;
END;
