//! Subscriptions per caller, in SQLite. Each change is one statement inside
//! a transaction, so concurrent calls never lose an update, and WAL with
//! full sync means a crash mid-write leaves the last committed state.

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
    fn as_str(self) -> &'static str {
        match self {
            ItemKind::Agent => "agent",
            ItemKind::Model => "model",
        }
    }
}

/// A caller's subscriptions, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
}

#[derive(Clone)]
pub struct SubscriptionStore {
    conn: Arc<Mutex<Connection>>,
}

impl SubscriptionStore {
    /// Opens (creating if needed) the store at `path` and its directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
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
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let sql = if add {
                "INSERT OR IGNORE INTO subscriptions (user_id, kind, item_id) VALUES (?1, ?2, ?3)"
            } else {
                "DELETE FROM subscriptions WHERE user_id = ?1 AND kind = ?2 AND item_id = ?3"
            };
            tx.execute(sql, params![user, kind.as_str(), id])?;
            let subs = read(&tx, &user)?;
            tx.commit()?;
            Ok(subs)
        })
        .await
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
        let store = SubscriptionStore::open(&dir.path().join("nested/subs.db")).unwrap();
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
        let store = SubscriptionStore::open(&dir.path().join("subs.db")).unwrap();
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
            let store = SubscriptionStore::open(&path).unwrap();
            store
                .subscribe("u", ItemKind::Agent, "risk_monitor")
                .await
                .unwrap();
        }
        let store = SubscriptionStore::open(&path).unwrap();
        assert_eq!(store.list("u").await.unwrap().agents, ["risk_monitor"]);
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = SubscriptionStore::open(&file.join("subs.db"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("subs.db"), "{err}");
    }
}
