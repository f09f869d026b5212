//! The `TaskStore` and `SuppressionList` implementations shared by both backends: each backend module defines free
//! functions with the same names over its own pool type, and this forwards the trait to them.
//!
//! The flows of the engine's writes on one target (which statement, whether it found its row,
//! the log row, the transaction around them) are written here once too; a backend module only
//! supplies their statements: `begin_write`, `write_outcome`, `write_invite_part`,
//! `write_release`, `write_uncertain`, `write_retry`, `pinned_to_abandon`, `insert_log`,
//! `write_lane` and `write_performed`, and `ledger_database` (whether its ledger shares the
//! store's database, so that an attempt's end carries the ledger's `performed`).

/// Implements `TaskStore` for `$store` (over a `$pool` of `$conn`s) by calling the free
/// functions of the invoking module, and defines the flows shared by both backends there.
macro_rules! forward_task_store {
    ($store:ty, $pool:ty, $conn:ty) => {
        /// Writes `record`'s outcome onto its target if the target is as `expect` says, with
        /// its log row; `NotFound` otherwise.
        async fn finish_target(
            conn: &mut $conn,
            record: &OutcomeRecord,
            expect: Expect<'_>,
        ) -> Result<()> {
            found(write_outcome(conn, record, expect).await?)?;
            insert_log(conn, &record.log).await
        }

        /// Sends an `invite_and_message` target whose invite is confirmed back to `pending`
        /// for its message, pinned to the record's account, with the invite's log row;
        /// `NotFound` unless the target is as `expect` says.
        async fn await_message(
            conn: &mut $conn,
            record: &OutcomeRecord,
            expect: Expect<'_>,
        ) -> Result<()> {
            found(write_invite_part(conn, record, expect).await?)?;
            insert_log(conn, &record.log).await
        }

        async fn record_outcome(pool: &$pool, record: &OutcomeRecord) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            finish_target(&mut tx, record, Expect::HeldBy(&record.account_id)).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn record_invite_part(pool: &$pool, record: &OutcomeRecord) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            await_message(&mut tx, record, Expect::HeldBy(&record.account_id)).await?;
            tx.commit().await?;
            Ok(())
        }

        /// The end of an attempt in one transaction: the record (an outcome or a confirmed
        /// invite) with its log row, the lane, and the reservation's `performed` when asked
        /// (only the engine of a store whose ledger shares its database asks).
        async fn record_attempt(pool: &$pool, end: &AttemptEnd) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            let expect = Expect::HeldBy(&end.record.account_id);
            if end.invite_part {
                await_message(&mut tx, &end.record, expect).await?;
            } else {
                finish_target(&mut tx, &end.record, expect).await?;
            }
            found(write_lane(&mut tx, &end.lane).await?)?;
            if let Some((reservation, at)) = end.performed {
                write_performed(&mut tx, &end.record.account_id, reservation, at).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn record_contact_part(
            pool: &$pool,
            target: TargetId,
            account: &AccountId,
            log: &NewExecutionLog,
        ) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            found(write_contact_part(&mut tx, target, account, log.created_at).await?)?;
            insert_log(&mut tx, log).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn release_target(
            pool: &$pool,
            target: TargetId,
            account: &AccountId,
            log: Option<NewExecutionLog>,
        ) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            found(write_release(&mut tx, target, account).await?)?;
            if let Some(log) = &log {
                insert_log(&mut tx, log).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn mark_uncertain(
            pool: &$pool,
            target: TargetId,
            account: &AccountId,
            log: Option<NewExecutionLog>,
        ) -> Result<()> {
            let mut tx = begin_write(pool).await?;
            found(write_uncertain(&mut tx, target, account).await?)?;
            if let Some(log) = &log {
                insert_log(&mut tx, log).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn settle_uncertain(
            pool: &$pool,
            target: TargetId,
            settlement: Settlement,
        ) -> Result<()> {
            let record = match &settlement {
                Settlement::Retry => {
                    let mut conn = pool.acquire().await?;
                    return found(write_retry(&mut conn, target).await?);
                }
                Settlement::InviteConfirmed(record) | Settlement::Final(record) => record,
            };
            if record.target_id != target {
                return Err(Error::Invalid(format!(
                    "settlement of target {target} carries target {}",
                    record.target_id
                )));
            }
            let mut tx = begin_write(pool).await?;
            if let Settlement::InviteConfirmed(_) = settlement {
                await_message(&mut tx, record, Expect::Unsettled).await?;
            } else {
                finish_target(&mut tx, record, Expect::Unsettled).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        /// Ends the task's pending targets pinned to an account that can no longer act, each
        /// with the record [`abandonment`] makes of it, in one transaction that holds their
        /// rows.
        async fn abandon_pinned(
            pool: &$pool,
            id: TaskId,
            gone: &[AccountId],
            pinned_before: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<u64> {
            let mut tx = begin_write(pool).await?;
            let pinned = pinned_to_abandon(&mut tx, id, gone, pinned_before).await?;
            let mut ended = 0;
            for row in pinned {
                let target = Target::try_from(row)?;
                let Some(sender) = target.sender.clone() else {
                    continue;
                };
                match abandonment(&target, &sender, now) {
                    Some(record) => {
                        finish_target(&mut tx, &record, Expect::Pending).await?;
                        ended += 1;
                    }
                    // Only in the sender's contacts: another account starts afresh.
                    None => found(write_unpin(&mut tx, target.id).await?)?,
                }
            }
            tx.commit().await?;
            Ok(ended)
        }

        #[async_trait]
        impl TaskStore for $store {
            async fn create_task<'a, 'b>(
                &self,
                task: NewTask,
                targets: Vec<NewTarget>,
                idempotency: Option<(&'a str, &'b str)>,
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

            async fn task_progress(
                &self,
                user: UserId,
                id: TaskId,
            ) -> StoreResult<(Task, Progress)> {
                Ok(task_progress(&self.pool, user, id).await?)
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

            async fn set_group_key(&self, id: TaskId, key: &str) -> StoreResult<()> {
                Ok(set_group_key(&self.pool, id, key).await?)
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

            async fn with_pending(
                &self,
                ids: &[TaskId],
            ) -> StoreResult<std::collections::BTreeSet<TaskId>> {
                Ok(with_pending(&self.pool, ids).await?)
            }

            async fn claim_target(&self, claim: &Claim) -> StoreResult<Option<Target>> {
                Ok(claim_target(&self.pool, claim).await?)
            }

            async fn followups(&self, id: TaskId, account: &AccountId) -> StoreResult<Followups> {
                Ok(followups(&self.pool, id, account).await?)
            }

            async fn record_contact_part(
                &self,
                target: TargetId,
                account: &AccountId,
                log: NewExecutionLog,
            ) -> StoreResult<()> {
                Ok(record_contact_part(&self.pool, target, account, &log).await?)
            }

            async fn record_outcome(&self, record: &OutcomeRecord) -> StoreResult<()> {
                Ok(record_outcome(&self.pool, record).await?)
            }

            async fn record_invite_part(&self, record: &OutcomeRecord) -> StoreResult<()> {
                Ok(record_invite_part(&self.pool, record).await?)
            }

            async fn release_target(
                &self,
                target: TargetId,
                account: &AccountId,
                log: Option<NewExecutionLog>,
            ) -> StoreResult<()> {
                Ok(release_target(&self.pool, target, account, log).await?)
            }

            async fn mark_uncertain(
                &self,
                target: TargetId,
                account: &AccountId,
                log: Option<NewExecutionLog>,
            ) -> StoreResult<()> {
                Ok(mark_uncertain(&self.pool, target, account, log).await?)
            }

            async fn heartbeat(&self, holder: &str, now: DateTime<Utc>) -> StoreResult<()> {
                Ok(heartbeat(&self.pool, holder, now).await?)
            }

            async fn retire_holder(&self, holder: &str) -> StoreResult<()> {
                Ok(retire_holder(&self.pool, holder).await?)
            }

            async fn recover_stale(&self, silent_since: DateTime<Utc>) -> StoreResult<u64> {
                Ok(recover_stale(&self.pool, silent_since).await?)
            }

            async fn uncertain_targets(&self, id: TaskId) -> StoreResult<Vec<Target>> {
                Ok(uncertain_targets(&self.pool, id).await?)
            }

            async fn settle_uncertain(
                &self,
                target: TargetId,
                settlement: Settlement,
            ) -> StoreResult<()> {
                Ok(settle_uncertain(&self.pool, target, settlement).await?)
            }

            async fn abandon_pinned(
                &self,
                id: TaskId,
                gone: &[AccountId],
                pinned_before: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<u64> {
                Ok(abandon_pinned(&self.pool, id, gone, pinned_before, now).await?)
            }

            fn ledger_database(&self) -> Option<DatabaseId> {
                ledger_database(self)
            }

            async fn record_attempt(&self, end: &AttemptEnd) -> StoreResult<()> {
                Ok(record_attempt(&self.pool, end).await?)
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
