//! Group commit: many requests share one flush of the store.
//!
//! A request encodes its batch and hands it to the one writer task, which
//! inserts every batch that queued while it wrote the previous group, then
//! flushes once and answers them all: under load one fsync covers many
//! batches, and a request is answered only after its batch is durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use state::model::{Event, WalBatch};
use state::trees::wal::{EncodedRecord, encode_split};
use state::{Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

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
    hot: Arc<HotBatches>,
    tx: mpsc::UnboundedSender<Pending>,
    /// Newest sequence known durable; stages watch it to wake up.
    durable: Arc<watch::Sender<u64>>,
}

/// A batch encoded by its request, waiting for the writer.
struct Pending {
    received_ms: i64,
    records: Vec<EncodedRecord>,
    done: oneshot::Sender<Result<u64, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the write-ahead log failed: {0}")]
    Flush(String),
    #[error("the store is shutting down")]
    Closed,
}

impl GroupCommit {
    /// Start the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let durable = Arc::new(watch::Sender::new(store.wal().head()));
        let hot: Arc<HotBatches> = Default::default();
        tokio::spawn(writer(store, hot.clone(), rx, durable.clone()));
        Self { hot, tx, durable }
    }

    /// The decoded batches shared with the pipeline's reader.
    pub fn hot(&self) -> Arc<HotBatches> {
        self.hot.clone()
    }

    /// Append one batch and return its sequence once it is durable. A big
    /// batch becomes several records; the last one's sequence answers.
    pub async fn append(&self, batch: WalBatch) -> Result<u64, CommitError> {
        // Encoding (with compression) runs here, in parallel across
        // requests; the writer only inserts and flushes.
        let records = encode_split(batch.received_ms, batch.events)?;
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Pending {
                received_ms: batch.received_ms,
                records,
                done,
            })
            .map_err(|_| CommitError::Closed)?;
        answer
            .await
            .map_err(|_| CommitError::Closed)?
            .map_err(CommitError::Flush)
    }

    /// Watch the newest durable sequence.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }
}

/// The single writer: takes every batch that queued while the previous
/// group was written, inserts them in arrival order, flushes once, then
/// answers them all. One writer means no lock contention on the tree's
/// tail and one fsync per group, however many requests are in flight.
async fn writer(
    store: Store,
    hot: Arc<HotBatches>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    durable: Arc<watch::Sender<u64>>,
) {
    let mut group = Vec::new();
    while let Some(first) = rx.recv().await {
        group.push(first);
        while let Ok(p) = rx.try_recv() {
            group.push(p);
        }
        let (s, h) = (store.clone(), hot.clone());
        let mut batch = std::mem::take(&mut group);
        let written = tokio::task::spawn_blocking(move || {
            let res = write_group(&s, &h, &mut batch);
            (batch, res)
        })
        .await;
        let (answered, res) = match written {
            Ok(v) => v,
            Err(e) => {
                // The group is lost with the task: its waiters see Closed.
                tracing::error!(error = %e, "write-ahead writer task failed");
                continue;
            }
        };
        match res {
            Ok(seqs) => {
                if let Some(&top) = seqs.iter().max() {
                    durable.send_if_modified(|d| {
                        let newer = top > *d;
                        if newer {
                            *d = top;
                        }
                        newer
                    });
                }
                for (p, seq) in answered.into_iter().zip(seqs) {
                    let _ = p.done.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the write-ahead log failed");
                for p in answered {
                    let _ = p.done.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Insert every pending batch, then flush; the last sequence of each.
fn write_group(
    store: &Store,
    hot: &HotBatches,
    group: &mut [Pending],
) -> Result<Vec<u64>, StoreError> {
    let wal = store.wal();
    let mut seqs = Vec::with_capacity(group.len());
    for p in group.iter_mut() {
        let mut last = 0;
        for (bytes, events) in p.records.drain(..) {
            let events = Arc::new(events);
            let at = p.received_ms;
            last = wal.append_encoded_then(bytes, |seq| hot.put(seq, at, events))?;
        }
        seqs.push(last);
    }
    store.flush()?;
    Ok(seqs)
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
