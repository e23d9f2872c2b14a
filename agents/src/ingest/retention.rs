//! `Retention`: periodically removes processed write-ahead records beyond
//! the configured age and size. Unprocessed records are never removed.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::Store;
use state::trees::cursors::PIPELINE;

pub struct Retention;

#[derive(Clone)]
pub struct RetentionArgs {
    pub store: Store,
    pub max_age: Duration,
    pub max_bytes: u64,
    pub every: Duration,
}

#[derive(Debug)]
pub enum RetentionMsg {
    Tick,
}

impl Actor for Retention {
    type Msg = RetentionMsg;
    type State = RetentionArgs;
    type Arguments = RetentionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RetentionMsg>,
        args: RetentionArgs,
    ) -> Result<RetentionArgs, ActorProcessingErr> {
        myself.send_interval(args.every, || RetentionMsg::Tick);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RetentionMsg>,
        _msg: RetentionMsg,
        a: &mut RetentionArgs,
    ) -> Result<(), ActorProcessingErr> {
        let store = a.store.clone();
        let (age, bytes) = (a.max_age.as_millis() as i64, a.max_bytes);
        // Trimming walks sled: keep it off the actor's thread.
        let removed = tokio::task::spawn_blocking(move || {
            let processed = store.cursors().get(PIPELINE)?;
            store.wal().trim(processed, state::now_ms(), age, bytes)
        })
        .await??;
        if removed > 0 {
            tracing::debug!(removed, "write-ahead retention");
        }
        Ok(())
    }
}
