//! The `TaskStore` and `SuppressionList` implementations shared by both backends: each backend module defines free
//! functions with the same names over its own pool type, and this forwards the trait to them.

/// Implements `TaskStore` for `$store` by calling the free functions of the invoking module.
macro_rules! forward_task_store {
    ($store:ty) => {
        #[async_trait]
        impl TaskStore for $store {
            async fn create_task(
                &self,
                task: NewTask,
                targets: Vec<NewTarget>,
                idempotency: Option<(&str, &str)>,
                now: DateTime<Utc>,
            ) -> StoreResult<CreatedTask> {
                Ok(create_task(&self.pool, task, targets, idempotency, now).await?)
            }

            async fn get_task(&self, user: UserId, id: TaskId) -> StoreResult<Task> {
                let mut conn = self.pool.acquire().await.map_err(Error::from)?;
                Ok(fetch_task(&mut conn, user, id).await?)
            }

            async fn list_tasks(
                &self,
                user: UserId,
                filter: &TaskFilter,
            ) -> StoreResult<Vec<Task>> {
                Ok(list_tasks(&self.pool, user, filter).await?)
            }

            async fn update_task(
                &self,
                user: UserId,
                id: TaskId,
                update: TaskUpdate,
                now: DateTime<Utc>,
            ) -> StoreResult<Task> {
                Ok(update_task(&self.pool, user, id, update, now).await?)
            }

            async fn delete_task(&self, user: UserId, id: TaskId) -> StoreResult<()> {
                Ok(delete_task(&self.pool, user, id).await?)
            }

            async fn transition(
                &self,
                user: UserId,
                id: TaskId,
                event: TaskEvent,
                reason: Option<String>,
                now: DateTime<Utc>,
            ) -> StoreResult<Task> {
                Ok(transition(&self.pool, user, id, event, reason, now).await?)
            }

            async fn transition_capped(
                &self,
                user: UserId,
                id: TaskId,
                event: TaskEvent,
                max_running: u64,
                now: DateTime<Utc>,
            ) -> StoreResult<Task> {
                Ok(transition_capped(&self.pool, user, id, event, max_running, now).await?)
            }

            async fn add_targets(
                &self,
                user: UserId,
                id: TaskId,
                targets: Vec<NewTarget>,
            ) -> StoreResult<AddedTargets> {
                Ok(add_targets(&self.pool, user, id, targets).await?)
            }

            async fn progress(&self, user: UserId, id: TaskId) -> StoreResult<Progress> {
                Ok(progress(&self.pool, user, id).await?)
            }

            async fn targets(
                &self,
                user: UserId,
                id: TaskId,
                limit: u32,
                offset: u32,
            ) -> StoreResult<Vec<Target>> {
                Ok(targets(&self.pool, user, id, limit, offset).await?)
            }

            async fn logs(
                &self,
                user: UserId,
                id: TaskId,
                filter: &LogFilter,
            ) -> StoreResult<Vec<ExecutionLog>> {
                Ok(logs(&self.pool, user, id, filter).await?)
            }

            async fn stats(&self, user: UserId, id: TaskId) -> StoreResult<TaskStats> {
                Ok(stats(&self.pool, user, id).await?)
            }

            async fn lanes(&self, user: UserId, id: TaskId) -> StoreResult<Vec<Lane>> {
                Ok(lanes(&self.pool, user, id).await?)
            }

            async fn reached_since(
                &self,
                user: UserId,
                platform: Platform,
                identifier_keys: &[String],
                channel: &str,
                since: DateTime<Utc>,
            ) -> StoreResult<std::collections::BTreeSet<String>> {
                Ok(
                    reached_since(&self.pool, user, platform, identifier_keys, channel, since)
                        .await?,
                )
            }

            async fn engine_tasks(&self, _now: DateTime<Utc>) -> StoreResult<Vec<Task>> {
                Ok(engine_tasks(&self.pool).await?)
            }

            async fn ensure_lanes(&self, id: TaskId, accounts: &[AccountId]) -> StoreResult<()> {
                Ok(ensure_lanes(&self.pool, id, accounts).await?)
            }

            async fn lanes_of(&self, ids: &[TaskId]) -> StoreResult<Vec<Lane>> {
                Ok(lanes_of(&self.pool, ids).await?)
            }

            async fn save_lane(&self, lane: &Lane) -> StoreResult<()> {
                Ok(save_lane(&self.pool, lane).await?)
            }

            async fn pending_counts(&self, ids: &[TaskId]) -> StoreResult<BTreeMap<TaskId, u64>> {
                Ok(pending_counts(&self.pool, ids).await?)
            }

            async fn claim_target(
                &self,
                id: TaskId,
                account: &AccountId,
                now: DateTime<Utc>,
                random_id: Option<i64>,
            ) -> StoreResult<Option<Target>> {
                Ok(claim_target(&self.pool, id, account, now, random_id).await?)
            }

            async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
                Ok(record_outcome(&self.pool, record).await?)
            }

            async fn release_target(
                &self,
                target: TargetId,
                account: &AccountId,
                log: Option<NewExecutionLog>,
            ) -> StoreResult<()> {
                Ok(release_target(&self.pool, target, account, log).await?)
            }

            async fn recover_stale(&self, claimed_before: DateTime<Utc>) -> StoreResult<u64> {
                Ok(recover_stale(&self.pool, claimed_before).await?)
            }

            async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>> {
                Ok(uncertain_targets(&self.pool, id).await?)
            }

            async fn settle_uncertain(
                &self,
                target: TargetId,
                settled: Option<OutcomeRecord>,
            ) -> StoreResult<()> {
                Ok(settle_uncertain(&self.pool, target, settled).await?)
            }

            async fn append_log(&self, log: NewExecutionLog) -> StoreResult<()> {
                let mut conn = self.pool.acquire().await.map_err(Error::from)?;
                Ok(insert_log(&mut conn, &log).await?)
            }

            async fn cleanup(
                &self,
                logs_before: DateTime<Utc>,
                tasks_finished_before: DateTime<Utc>,
            ) -> StoreResult<CleanupReport> {
                Ok(cleanup(&self.pool, logs_before, tasks_finished_before).await?)
            }
        }
    };
}

/// Implements `SuppressionList` for `$store`: the reads and the removal are the same SQL on
/// both backends; adding goes through the invoking module's `suppress_people`.
macro_rules! forward_suppression_list {
    ($store:ty) => {
        #[async_trait]
        impl SuppressionList for $store {
            async fn suppress(
                &self,
                user: UserId,
                platform: Platform,
                people: &[TargetIdentifier],
                reason: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<u64> {
                Ok(suppress_people(&self.pool, user, platform, people, reason, now).await?)
            }

            async fn unsuppress(
                &self,
                user: UserId,
                platform: Platform,
                person: &TargetIdentifier,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "DELETE FROM invite_suppressions \
                     WHERE user_id = $1 AND platform = $2 AND identifier_key = $3",
                )
                .bind(user.get())
                .bind(platform.as_str())
                .bind(person.dedupe_key())
                .execute(&self.pool)
                .await
                .map_err(Error::from)?
                .rows_affected();
                Ok(done > 0)
            }

            async fn is_suppressed(
                &self,
                user: UserId,
                platform: Platform,
                person: &TargetIdentifier,
            ) -> StoreResult<bool> {
                let found: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM invite_suppressions \
                     WHERE user_id = $1 AND platform = $2 AND identifier_key = $3)",
                )
                .bind(user.get())
                .bind(platform.as_str())
                .bind(person.dedupe_key())
                .fetch_one(&self.pool)
                .await
                .map_err(Error::from)?;
                Ok(found)
            }

            async fn suppressed(
                &self,
                user: UserId,
                platform: Platform,
                limit: u32,
                offset: u32,
            ) -> StoreResult<Vec<SuppressionEntry>> {
                let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT identifier_key, reason, created_at FROM invite_suppressions \
                     WHERE user_id = $1 AND platform = $2 ORDER BY id LIMIT $3 OFFSET $4",
                )
                .bind(user.get())
                .bind(platform.as_str())
                .bind(sql_limit(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await
                .map_err(Error::from)?;
                Ok(crate::model::suppression_entries(rows)?)
            }
        }
    };
}
