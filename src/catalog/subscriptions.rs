//! Subscriptions per caller, in SQLite. Each change is one statement inside
//! a transaction, so concurrent calls never lose an update, and WAL with
//! full sync means a crash mid-write leaves the last committed state.
//!
//! Callers name themselves (`X-User-Id` without API keys), so the store caps
//! both each caller's subscriptions and the number of callers it keeps.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Agent,
    Model,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Agent => "agent",
            ItemKind::Model => "model",
        }
    }
}

/// A caller's subscriptions, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Subscriptions {
    pub agents: Vec<String>,
    pub models: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("subscriptions store {path}: {source}")]
    Open {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("subscriptions store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("subscriptions store: a worker thread failed")]
    Worker,
    /// The caller already holds the most subscriptions one caller may.
    #[error("at most {limit} subscriptions per caller; unsubscribe from one first")]
    CallerFull { limit: usize },
    /// The store already holds subscriptions for the most callers it keeps.
    #[error(
        "the subscriptions store is full ({limit} callers); try again after others unsubscribe"
    )]
    StoreFull { limit: usize },
}

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionLimits {
    /// Subscriptions one caller may hold.
    pub per_caller: usize,
    /// Callers with at least one subscription.
    pub callers: usize,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits {
            per_caller: 100,
            callers: 100_000,
        }
    }
}

#[derive(Clone)]
pub struct SubscriptionStore {
    conn: Arc<Mutex<Connection>>,
    limits: SubscriptionLimits,
}

impl SubscriptionStore {
    /// Opens (creating if needed) the store at `path` and its directory.
    pub fn open(path: &Path, limits: SubscriptionLimits) -> Result<Self, StoreError> {
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(Box::new(e)))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(Box::new(e)))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|_| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .and_then(|_| {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS subscriptions (
                        user_id    TEXT NOT NULL,
                        kind       TEXT NOT NULL CHECK (kind IN ('agent', 'model')),
                        item_id    TEXT NOT NULL,
                        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                        PRIMARY KEY (user_id, kind, item_id)
                    ) WITHOUT ROWID;",
                )
            })
            .map_err(|e| open_err(Box::new(e)))?;
        Ok(SubscriptionStore {
            conn: Arc::new(Mutex::new(conn)),
            limits,
        })
    }

    pub async fn subscribe(
        &self,
        user: &str,
        kind: ItemKind,
        id: &str,
    ) -> Result<Subscriptions, StoreError> {
        self.change(user, kind, id, true).await
    }

    pub async fn unsubscribe(
        &self,
        user: &str,
        kind: ItemKind,
        id: &str,
    ) -> Result<Subscriptions, StoreError> {
        self.change(user, kind, id, false).await
    }

    pub async fn list(&self, user: &str) -> Result<Subscriptions, StoreError> {
        let user = user.to_string();
        self.run(move |conn| read(conn, &user)).await
    }

    async fn change(
        &self,
        user: &str,
        kind: ItemKind,
        id: &str,
        add: bool,
    ) -> Result<Subscriptions, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        let limits = self.limits;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if add {
                let added = tx.execute(
                    "INSERT OR IGNORE INTO subscriptions (user_id, kind, item_id) VALUES (?1, ?2, ?3)",
                    params![user, kind.as_str(), id],
                )?;
                if added > 0 {
                    if let Err(limit) = within_limits(&tx, &user, limits)? {
                        // Dropping the transaction rolls the insert back.
                        return Ok(Err(limit));
                    }
                }
            } else {
                tx.execute(
                    "DELETE FROM subscriptions WHERE user_id = ?1 AND kind = ?2 AND item_id = ?3",
                    params![user, kind.as_str(), id],
                )?;
            }
            let subs = read(&tx, &user)?;
            tx.commit()?;
            Ok(Ok(subs))
        })
        .await?
    }

    /// SQLite calls block, so they run off the async workers.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A poisoned lock only means another call panicked; the
            // connection itself is still consistent (SQLite rolled back).
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            job(&mut guard).map_err(StoreError::from)
        })
        .await
        .map_err(|_| StoreError::Worker)?
    }
}

/// After an insert: `Err` with the limit the new row breaks.
fn within_limits(
    conn: &Connection,
    user: &str,
    limits: SubscriptionLimits,
) -> Result<Result<(), StoreError>, rusqlite::Error> {
    let held: i64 = conn.query_row(
        "SELECT COUNT(*) FROM subscriptions WHERE user_id = ?1",
        params![user],
        |row| row.get(0),
    )?;
    if held as usize > limits.per_caller {
        return Ok(Err(StoreError::CallerFull {
            limit: limits.per_caller,
        }));
    }
    if held == 1 {
        // A new caller: count the callers the store keeps.
        let callers: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT user_id) FROM subscriptions",
            [],
            |row| row.get(0),
        )?;
        if callers as usize > limits.callers {
            return Ok(Err(StoreError::StoreFull {
                limit: limits.callers,
            }));
        }
    }
    Ok(Ok(()))
}

fn read(conn: &Connection, user: &str) -> Result<Subscriptions, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, item_id FROM subscriptions WHERE user_id = ?1 ORDER BY kind, item_id",
    )?;
    let rows = stmt.query_map(params![user], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut subs = Subscriptions::default();
    for row in rows {
        let (kind, id) = row?;
        match kind.as_str() {
            "agent" => subs.agents.push(id),
            _ => subs.models.push(id),
        }
    }
    Ok(subs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscriptions_are_per_user_sorted_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SubscriptionStore::open(
            &dir.path().join("nested/subs.db"),
            SubscriptionLimits::default(),
        )
        .unwrap();
        store
            .subscribe("alice", ItemKind::Model, "lstm_predictor")
            .await
            .unwrap();
        store
            .subscribe("alice", ItemKind::Model, "adaptive_ensemble")
            .await
            .unwrap();
        let subs = store
            .subscribe("alice", ItemKind::Model, "adaptive_ensemble")
            .await
            .unwrap();
        assert_eq!(subs.models, ["adaptive_ensemble", "lstm_predictor"]);
        assert!(store.list("bob").await.unwrap().models.is_empty());
        let subs = store
            .unsubscribe("alice", ItemKind::Model, "lstm_predictor")
            .await
            .unwrap();
        assert_eq!(subs.models, ["adaptive_ensemble"]);
    }

    #[tokio::test]
    async fn concurrent_changes_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SubscriptionStore::open(&dir.path().join("subs.db"), SubscriptionLimits::default())
                .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .subscribe("u", ItemKind::Agent, &format!("a{i:02}"))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.list("u").await.unwrap().agents.len(), 50);
    }

    #[tokio::test]
    async fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subs.db");
        {
            let store = SubscriptionStore::open(&path, SubscriptionLimits::default()).unwrap();
            store
                .subscribe("u", ItemKind::Agent, "risk_monitor")
                .await
                .unwrap();
        }
        let store = SubscriptionStore::open(&path, SubscriptionLimits::default()).unwrap();
        assert_eq!(store.list("u").await.unwrap().agents, ["risk_monitor"]);
    }

    #[tokio::test]
    async fn each_caller_and_the_number_of_callers_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SubscriptionLimits {
            per_caller: 2,
            callers: 2,
        };
        let store = SubscriptionStore::open(&dir.path().join("subs.db"), limits).unwrap();
        store.subscribe("a", ItemKind::Agent, "x").await.unwrap();
        store.subscribe("a", ItemKind::Agent, "y").await.unwrap();
        // Again: already held, so no new row and no refusal.
        store.subscribe("a", ItemKind::Agent, "y").await.unwrap();
        let err = store
            .subscribe("a", ItemKind::Agent, "z")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::CallerFull { limit: 2 }), "{err}");
        store.subscribe("b", ItemKind::Agent, "x").await.unwrap();
        let err = store
            .subscribe("c", ItemKind::Agent, "x")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StoreFull { limit: 2 }), "{err}");
        // Refused rows were rolled back; freeing room lets a caller in.
        assert_eq!(store.list("a").await.unwrap().agents, ["x", "y"]);
        assert!(store.list("c").await.unwrap().agents.is_empty());
        store.unsubscribe("b", ItemKind::Agent, "x").await.unwrap();
        store.subscribe("c", ItemKind::Agent, "x").await.unwrap();
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = SubscriptionStore::open(&file.join("subs.db"), SubscriptionLimits::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("subs.db"), "{err}");
    }
}
