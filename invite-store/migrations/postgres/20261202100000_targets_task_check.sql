-- Bulk target writes (one COPY) at the speed of the table's indexes. The foreign key from
-- invite_targets to invite_tasks checked every row with a locking lookup of its task: about
-- half the time of a 200 000-row import. Every writer of targets holds its task (created in the
-- same transaction, or locked FOR UPDATE by add_targets), so one check per statement over the
-- new rows keeps the same rule: no target without its task. Nothing changes a target's task_id
-- after its insert. Deleting tasks still deletes their targets (and so their log rows), as the
-- ON DELETE CASCADE did, once per statement.
ALTER TABLE invite_targets DROP CONSTRAINT invite_targets_task_id_fkey;

CREATE FUNCTION invite_targets_check_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invite_targets_new n
               WHERE NOT EXISTS (SELECT 1 FROM invite_tasks t WHERE t.id = n.task_id)) THEN
        RAISE EXCEPTION 'insert into invite_targets references a task that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER invite_targets_task_exists AFTER INSERT ON invite_targets
    REFERENCING NEW TABLE AS invite_targets_new
    FOR EACH STATEMENT EXECUTE FUNCTION invite_targets_check_task();

CREATE FUNCTION invite_tasks_delete_targets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM invite_targets WHERE task_id IN (SELECT id FROM invite_tasks_old);
    RETURN NULL;
END
$$;

CREATE TRIGGER invite_tasks_delete_targets AFTER DELETE ON invite_tasks
    REFERENCING OLD TABLE AS invite_tasks_old
    FOR EACH STATEMENT EXECUTE FUNCTION invite_tasks_delete_targets();
