//! Group commit: many requests share one flush of the store.
//!
//! A request appends its batch to the write-ahead tree, then waits for a
//! flush that *started after* its append. One flusher task collects every
//! waiter that arrived while the previous flush ran and answers them all
//! after the next one, so under load one fsync covers many batches.

use std::sync::Arc;

use state::model::WalBatch;
use state::{Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Appends batches durably. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    store: Store,
    tx: mpsc::UnboundedSender<Waiter>,
    /// Newest sequence known durable; stages watch it to wake up.
    durable: Arc<watch::Sender<u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("flushing the store failed: {0}")]
    Flush(String),
    #[error("the store is shutting down")]
    Closed,
}

impl GroupCommit {
    /// Start the flusher task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let durable = Arc::new(watch::Sender::new(store.wal().head()));
        tokio::spawn(flusher(store.clone(), rx, durable.clone()));
        Self { store, tx, durable }
    }

    /// Append one batch and return its sequence once it is durable.
    pub async fn append(&self, batch: &WalBatch) -> Result<u64, CommitError> {
        let bytes = state::codec::encode_wal(batch)?;
        let store = self.store.clone();
        // sled inserts can block briefly on I/O: keep them off the reactor.
        let seq = tokio::task::spawn_blocking(move || store.wal().append_encoded(bytes))
            .await
            .map_err(|_| CommitError::Closed)??;
        let (done_tx, done_rx) = oneshot::channel();
        self.tx.send(done_tx).map_err(|_| CommitError::Closed)?;
        done_rx
            .await
            .map_err(|_| CommitError::Closed)?
            .map_err(CommitError::Flush)?;
        self.durable.send_if_modified(|d| {
            let newer = seq > *d;
            if newer {
                *d = seq;
            }
            newer
        });
        Ok(seq)
    }

    /// Watch the newest durable sequence.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }
}

async fn flusher(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    _d: Arc<watch::Sender<u64>>,
) {
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let s = store.clone();
        let res = match tokio::task::spawn_blocking(move || s.flush()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &res {
            tracing::error!(error = %e, "flushing the write-ahead log failed");
        }
        for w in waiters.drain(..) {
            let _ = w.send(res.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::model::{Event, Level, LogEvent};

    #[tokio::test]
    async fn concurrent_appends_get_dense_sequences_and_are_readable() {
        let store = Store::temporary().unwrap();
        let gc = GroupCommit::start(store.clone());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let gc = gc.clone();
            tasks.push(tokio::spawn(async move {
                let b = WalBatch {
                    received_ms: i,
                    events: vec![Event::Log(LogEvent {
                        ts_ms: i,
                        service: "s".into(),
                        level: Level::Info,
                        message: format!("{i}"),
                        fields: Default::default(),
                    })],
                };
                gc.append(&b).await.unwrap()
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
        assert_eq!(*gc.subscribe().borrow(), 50);
        assert_eq!(store.wal().read_after(0, 100).unwrap().len(), 50);
    }
}
