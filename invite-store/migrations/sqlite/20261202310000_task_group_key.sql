-- The stable key of a task's group on its platform (InviteStrategy::group_key: every spelling
-- of one group, `@chan`, `t.me/chan`, `-100…`, has one), recorded once the engine resolved it.
-- The send-time de-duplication across tasks (`dedupe_days`) matches a task by it as well as by
-- channel_key (the group as written); NULL until resolved, and again when the group changes.
ALTER TABLE invite_tasks ADD COLUMN group_key TEXT;
