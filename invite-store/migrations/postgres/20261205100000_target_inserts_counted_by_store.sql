-- Bulk target writes (one COPY) at the speed of the table and its indexes. The two statement
-- triggers on INSERT (the task's existence, the per-task counts) made PostgreSQL keep every new
-- row in a transition table and read it twice: about a fifth of a 200 000-row import. Targets
-- are inserted in one place only, the store's `insert_targets`, and only as `pending` rows
-- without an outcome, by a caller that holds the task (created in the same transaction, or
-- locked FOR UPDATE by add_targets): that function adds the rows it inserted to
-- invite_target_counts itself, in the same transaction, and the task it writes to exists
-- while it writes. Updates and deletes are still counted by the triggers.
DROP TRIGGER invite_targets_count_insert ON invite_targets;
DROP TRIGGER invite_targets_task_exists ON invite_targets;
DROP FUNCTION invite_targets_check_task();

CREATE OR REPLACE FUNCTION invite_targets_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
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
