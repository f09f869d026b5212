-- Bulk target writes (one COPY) at the speed of the table and its indexes. The two statement
-- triggers on INSERT (the task's existence, the per-task counts) made PostgreSQL keep every new
-- row in a transition table and read it twice: about a fifth of a 200 000-row import. Targets
-- are inserted in one place only, the store's `insert_targets`, and only as `pending` rows
-- without an outcome, by a caller that holds the task (created in the same transaction, or
-- locked FOR UPDATE by add_targets): that function adds the rows it inserted to
-- invite_target_counts itself, in the same transaction, and the task it writes to exists
-- while it writes. Updates and deletes are still counted by the triggers of
-- invite_targets_count() (its INSERT branch is no longer fired).
DROP TRIGGER invite_targets_count_insert ON invite_targets;
DROP TRIGGER invite_targets_task_exists ON invite_targets;
DROP FUNCTION invite_targets_check_task();
