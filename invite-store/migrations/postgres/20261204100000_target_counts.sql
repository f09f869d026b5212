-- Per-task counts of targets by (status, outcome), kept by triggers in the transaction of every
-- statement that inserts, updates or deletes targets: a task's progress, its pending count and
-- "is anything pending" read a few rows here instead of aggregating the task's targets.
--
-- Each connection adds its changes to its own slot (its backend pid modulo 16), so concurrent
-- writers of one task (claims and outcomes of several accounts) do not queue on one counter
-- row; a count is the sum over the slots. `outcome` is '' for a target without one. A slot's
-- row may go negative (a target counted in by one connection and out by another); the sums
-- never do.
CREATE TABLE invite_target_counts (
    task_id BIGINT      NOT NULL,
    status  VARCHAR(20) NOT NULL,
    outcome VARCHAR(50) NOT NULL,
    slot    SMALLINT    NOT NULL,
    n       BIGINT      NOT NULL,
    PRIMARY KEY (task_id, status, outcome, slot)
);

INSERT INTO invite_target_counts (task_id, status, outcome, slot, n)
SELECT task_id, status, COALESCE(outcome, ''), 0, count(*)
FROM invite_targets GROUP BY task_id, status, COALESCE(outcome, '');

-- Adds `d` per (task, status, outcome) of the statement's rows to this connection's slot, in
-- key order (so two statements that share a slot lock its rows in one order). Rows of a task
-- that no longer exists (targets deleted with their task) are not counted.
CREATE FUNCTION invite_targets_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO invite_target_counts AS c (task_id, status, outcome, slot, n)
        SELECT task_id, status, COALESCE(outcome, ''), pg_backend_pid() % 16, count(*)
        FROM invite_targets_new
        GROUP BY task_id, status, COALESCE(outcome, '')
        ORDER BY 1, 2, 3
        ON CONFLICT (task_id, status, outcome, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO invite_target_counts AS c (task_id, status, outcome, slot, n)
        SELECT x.task_id, x.status, x.outcome, pg_backend_pid() % 16, sum(x.d)
        FROM (SELECT task_id, status, COALESCE(outcome, '') AS outcome, 1 AS d
                  FROM invite_targets_new
              UNION ALL
              SELECT task_id, status, COALESCE(outcome, ''), -1 FROM invite_targets_old) AS x
        GROUP BY x.task_id, x.status, x.outcome
        HAVING sum(x.d) <> 0
        ORDER BY 1, 2, 3
        ON CONFLICT (task_id, status, outcome, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO invite_target_counts AS c (task_id, status, outcome, slot, n)
        SELECT o.task_id, o.status, COALESCE(o.outcome, ''), pg_backend_pid() % 16, -count(*)
        FROM invite_targets_old o
        WHERE EXISTS (SELECT 1 FROM invite_tasks t WHERE t.id = o.task_id)
        GROUP BY o.task_id, o.status, COALESCE(o.outcome, '')
        ORDER BY 1, 2, 3
        ON CONFLICT (task_id, status, outcome, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER invite_targets_count_insert AFTER INSERT ON invite_targets
    REFERENCING NEW TABLE AS invite_targets_new
    FOR EACH STATEMENT EXECUTE FUNCTION invite_targets_count();

CREATE TRIGGER invite_targets_count_update AFTER UPDATE ON invite_targets
    REFERENCING OLD TABLE AS invite_targets_old NEW TABLE AS invite_targets_new
    FOR EACH STATEMENT EXECUTE FUNCTION invite_targets_count();

CREATE TRIGGER invite_targets_count_delete AFTER DELETE ON invite_targets
    REFERENCING OLD TABLE AS invite_targets_old
    FOR EACH STATEMENT EXECUTE FUNCTION invite_targets_count();

-- A deleted task's counts go with it.
CREATE FUNCTION invite_tasks_delete_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM invite_target_counts WHERE task_id IN (SELECT id FROM invite_tasks_old);
    RETURN NULL;
END
$$;

CREATE TRIGGER invite_tasks_delete_counts AFTER DELETE ON invite_tasks
    REFERENCING OLD TABLE AS invite_tasks_old
    FOR EACH STATEMENT EXECUTE FUNCTION invite_tasks_delete_counts();
