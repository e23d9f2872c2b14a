//! The recovery stage in the tree: its child spec, the executors it gets
//! (the `restart_agent` callback restarts a child through the registry)
//! and where its events go (the log, and every sink added to the handle's
//! [`Sinks`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::notify::actor::{Notifier, NotifierArgs, NotifyMsg};
use agents::recovery::actor::{Recoverer, RecovererArgs};
use agents::recovery::exec::{Executors, RestartFn, http_client};
use agents::recovery::messages::{EventSink, RecoveryEvent};
use ractor::{Actor, ActorRef};
use state::Store;

use crate::api::actions::RecoveryHandle;
use crate::config::Config;
use crate::tree::{ChildSpec, Registry, Restart};

/// Extra receivers of recovery events (notify, fix statistics).
#[derive(Clone, Default)]
pub struct Sinks(Arc<Mutex<Vec<EventSink>>>);

impl Sinks {
    pub fn add(&self, s: EventSink) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }
    fn emit(&self, e: RecoveryEvent) {
        let sinks = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for s in sinks {
            s(e.clone());
        }
    }
}

pub fn child_spec(
    cfg: &Config,
    store: &Store,
    registry: &Registry,
    handle: &RecoveryHandle,
) -> ChildSpec {
    let reg = registry.clone();
    let restart: RestartFn = Arc::new(move |path: String| {
        let reg = reg.clone();
        Box::pin(async move { reg.restart(&path).await.map_err(|e| e.to_string()) })
    });
    let executors = Executors {
        http: http_client(),
        allowed_hosts: Arc::new(cfg.recovery.allowed_hosts.clone()),
        store: store.clone(),
        snapshot_dir: cfg
            .recovery
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("snapshots")),
        restart: Some(restart),
    };
    let config = Arc::new(cfg.recovery.clone());
    let sinks = handle.sinks.clone();
    let events: EventSink = Arc::new(move |e: RecoveryEvent| {
        tracing::info!(event = ?e, "recovery.event");
        sinks.emit(e);
    });
    let (store, handle) = (store.clone(), handle.clone());
    ChildSpec::new("recovery", Restart::Permanent, move |sup| {
        let args = RecovererArgs {
            store: store.clone(),
            audit: handle.audit.clone(),
            config: config.clone(),
            executors: executors.clone(),
            events: events.clone(),
            health: Default::default(),
            tick: Duration::from_millis(500),
        };
        let handle = handle.clone();
        async move {
            let (r, _) = Actor::spawn_linked(None, Recoverer, args, sup).await?;
            handle.set(r.clone());
            Ok(r.get_cell())
        }
    })
    .with_shutdown(cfg.supervision.shutdown_timeout.0)
}

/// The notify stage: a child of the root, fed by the recovery events (via
/// the handle's sinks) and by its own scan of incidents.
pub fn notify_spec(cfg: &Config, store: &Store, handle: &RecoveryHandle) -> ChildSpec {
    let slot: Arc<Mutex<Option<ActorRef<NotifyMsg>>>> = Default::default();
    let s = slot.clone();
    handle.sinks.add(Arc::new(move |e: RecoveryEvent| {
        if let Some(r) = s.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = r.cast(NotifyMsg::Recovery(e));
        }
    }));
    let config = Arc::new(cfg.notify.clone());
    let client = http_client();
    let store = store.clone();
    ChildSpec::new("notify", Restart::Permanent, move |sup| {
        let args = NotifierArgs {
            store: store.clone(),
            config: config.clone(),
            client: client.clone(),
            scan_every: Duration::from_millis(500),
        };
        let slot = slot.clone();
        async move {
            let (r, _) = Actor::spawn_linked(None, Notifier, args, sup).await?;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
            Ok(r.get_cell())
        }
    })
    .with_shutdown(cfg.supervision.shutdown_timeout.0)
}
