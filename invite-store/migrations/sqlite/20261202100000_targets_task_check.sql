-- PostgreSQL replaces the per-row foreign key from invite_targets to invite_tasks by one check
-- per statement (see the PostgreSQL migration of the same name) for its bulk COPY. SQLite keeps
-- its foreign key: its check is an index probe in the same process, not a locking lookup.
SELECT 1;
