//! `CREATE ALERT`, `DROP ALERT` and `ALTER ALERT … PAUSE|RESUME`: checked, persisted,
//! and (re)scheduled.

use super::*;

pub(super) fn fail(state: SqlState, message: impl Into<String>) -> StatementError {
    StatementError::new(state, message)
}

pub(super) fn no_such_alert(name: &str) -> StatementError {
    fail(
        SqlState::UNDEFINED_OBJECT,
        format!("alert \"{name}\" does not exist"),
    )
}

impl Alerts {
    /// Writes (`Some`) or removes (`None`) a rule's definition durably, off the async
    /// threads and outside every lock but the DDL one.
    async fn persist(&self, rule: Option<Rule>, name: &str) -> Result<(), StatementError> {
        let path = self.rule_path(name);
        let dir = self.dir.join("rules");
        tokio::task::spawn_blocking(move || match rule {
            Some(rule) => save_rule(&path, &rule),
            None => remove_rule(&path, &dir),
        })
        .await
        .map_err(StatementError::internal)?
        .map_err(|e| e.to_error())
    }

    pub(super) async fn create(
        &self,
        db: &str,
        def: AlertDefinition,
    ) -> Result<Outcome, StatementError> {
        if let Err(e) = eval::plan(&self.query, db, &def.query).await {
            let e = e.to_error();
            return Err(fail(e.state, format!("invalid alert query: {}", e.message)));
        }
        let rule = Rule {
            name: def.name.clone(),
            database: db.to_string(),
            query: def.query,
            every_secs: def.every_secs.unwrap_or(DEFAULT_EVERY_SECS),
            for_secs: def.for_secs,
            keep_firing_for_secs: def.keep_firing_for_secs,
            labels: def.labels,
            annotations: def.annotations,
            receivers: def.receivers,
            paused: false,
            created_at: self.clock.now_nanos(),
        };
        let _ddl = self.ddl.lock().await;
        if self.rules.lock().contains_key(&rule.name) {
            if def.if_not_exists {
                return Ok(Outcome {
                    tag: "CREATE ALERT",
                    rows: None,
                });
            }
            return Err(fail(
                SqlState::DUPLICATE_OBJECT,
                format!("alert \"{}\" already exists", rule.name),
            ));
        }
        self.persist(Some(rule.clone()), &rule.name).await?;
        self.rules.lock().insert(rule.name.clone(), rule.clone());
        self.states.lock().insert(
            rule.name.clone(),
            RuleState {
                name: rule.name.clone(),
                ..RuleState::default()
            },
        );
        self.scheduler.lock().set(
            &rule.name,
            rule.every_secs as i64 * NS,
            self.clock.now_nanos(),
        );
        self.wake.notify_one();
        Ok(Outcome {
            tag: "CREATE ALERT",
            rows: None,
        })
    }

    pub(super) async fn drop_rule(
        &self,
        name: &str,
        if_exists: bool,
    ) -> Result<Outcome, StatementError> {
        let _ddl = self.ddl.lock().await;
        if !self.rules.lock().contains_key(name) {
            if if_exists {
                return Ok(Outcome {
                    tag: "DROP ALERT",
                    rows: None,
                });
            }
            return Err(no_such_alert(name));
        }
        self.persist(None, name).await?;
        self.rules.lock().remove(name);
        self.scheduler.lock().remove(name);
        self.states.lock().remove(name);
        let _ = std::fs::remove_file(
            self.dir
                .join("state")
                .join(format!("{}.json", hash_name(name))),
        );
        Ok(Outcome {
            tag: "DROP ALERT",
            rows: None,
        })
    }

    pub(super) async fn set_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<Outcome, StatementError> {
        let _ddl = self.ddl.lock().await;
        let Some(mut changed) = self.rules.lock().get(name).cloned() else {
            return Err(no_such_alert(name));
        };
        changed.paused = paused;
        let every = changed.every_secs;
        self.persist(Some(changed.clone()), name).await?;
        self.rules.lock().insert(name.to_string(), changed);
        let mut scheduler = self.scheduler.lock();
        if paused {
            scheduler.remove(name);
        } else {
            scheduler.set(name, every as i64 * NS, self.clock.now_nanos());
        }
        drop(scheduler);
        self.wake.notify_one();
        Ok(Outcome {
            tag: "ALTER ALERT",
            rows: None,
        })
    }
}
