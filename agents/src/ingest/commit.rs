//! Group commit: many requests share one flush of the store.
//!
//! A request appends its batch to the write-ahead tree, then waits for a
//! flush that *started after* its append. One flusher task collects every
//! waiter that arrived while the previous flush ran and answers them all
//! after the next one, so under load one fsync covers many batches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use state::model::{Event, WalBatch};
use state::trees::wal::encode_split;
use state::{Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Arrival time and events of one hot batch.
pub type HotBatch = (i64, Arc<Vec<Event>>);

/// Batches just appended, already decoded, so the pipeline need not read
/// back and decode what the API has just encoded. Bounded; a miss (after a
/// restart, or when the pipeline lags) falls back to the write-ahead tree.
#[derive(Debug, Default)]
pub struct HotBatches {
    inner: Mutex<BTreeMap<u64, HotBatch>>,
}

/// Most batches kept hot.
const HOT_CAP: usize = 256;

impl HotBatches {
    fn put(&self, seq: u64, received_ms: i64, events: Arc<Vec<Event>>) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(seq, (received_ms, events));
        while m.len() > HOT_CAP {
            m.pop_first();
        }
    }

    /// Arrival time and events of batch `seq`, if still hot.
    pub fn get(&self, seq: u64) -> Option<HotBatch> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&seq)
            .cloned()
    }

    /// Forget batches at or below `seq` (committed by the pipeline).
    pub fn release_upto(&self, seq: u64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while m.first_key_value().is_some_and(|(k, _)| *k <= seq) {
            m.pop_first();
        }
    }
}

/// Appends batches durably. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    store: Store,
    hot: Arc<HotBatches>,
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
        Self {
            store,
            hot: Default::default(),
            tx,
            durable,
        }
    }

    /// The decoded batches shared with the pipeline's reader.
    pub fn hot(&self) -> Arc<HotBatches> {
        self.hot.clone()
    }

    /// Append one batch and return its sequence once it is durable.
    pub async fn append(&self, batch: WalBatch) -> Result<u64, CommitError> {
        let store = self.store.clone();
        let hot = self.hot.clone();
        // Encoding (compression) and sled inserts are CPU work and can block
        // briefly on I/O: keep them off the reactor. A big batch becomes
        // several records; the last one's sequence answers for all.
        let seq = tokio::task::spawn_blocking(move || {
            let received_ms = batch.received_ms;
            let mut last = 0;
            for (bytes, events) in encode_split(received_ms, batch.events)? {
                let events = Arc::new(events);
                last = store
                    .wal()
                    .append_encoded_then(bytes, |seq| hot.put(seq, received_ms, events))?;
            }
            Ok::<_, StoreError>(last)
        })
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
                gc.append(b).await.unwrap()
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
        let hot = gc.hot();
        assert_eq!(hot.get(7).unwrap().1.len(), 1);
        hot.release_upto(10);
        assert!(hot.get(10).is_none() && hot.get(11).is_some());
    }
}
