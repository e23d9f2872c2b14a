//! Startup: open the store, build the supervision tree and the HTTP API,
//! serve until a shutdown signal or until the tree gives up.
//!
//! The tree:
//!
//! ```text
//! root (one-for-one)
//! ├── pipeline (rest-for-one; started downstream first)
//! │   ├── fixes     ranks fixes for each diagnosis, stores the plan
//! │   ├── rca       ranks root causes of each changed incident
//! │   ├── triage    folds anomalies into incidents (correlating linked services), commits the cursor
//! │   ├── detect    signatures → anomalies
//! │   └── ingest    write-ahead log → detect, by cursor
//! ├── retention     trims processed write-ahead records
//! ├── recovery      carries out fix plans behind the guardrails
//! └── notify        tells people (Telegram, Slack, Discord, webhooks)
//! ```
//!
//! Downstream stages start first so that each upstream stage gets a live
//! reference; with rest-for-one, a restarted stage restarts every stage
//! started after it, i.e. everything upstream that held its old reference.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::chaos::Faults;
use agents::detect::actor::{Detector, DetectorArgs, StatsArgs};
use agents::detect::gauges::DetectGauges;
use agents::detect::messages::DetectMsg;
use agents::detect::signatures::{BUILTIN, Catalogue};
use agents::fixes::actor::{PlanSink, Planner, PlannerArgs};
use agents::fixes::messages::FixesMsg;
use agents::health::StageHealth;
use agents::ingest::actor::{Ingestor, IngestorArgs};
use agents::ingest::commit::GroupCommit;
use agents::ingest::retention::{Retention, RetentionArgs};
use agents::rca::actor::{Analyst, AnalystArgs};
use agents::rca::messages::RcaMsg;
use agents::rca::shared::{RcaSettings, RcaShared};
use agents::recovery::messages::{RecoveryEvent, RecoveryMsg};
use agents::triage::actor::{Triager, TriagerArgs};
use agents::triage::correlate::CorrelateConfig;
use agents::triage::dedup::DedupConfig;
use agents::triage::link::RcaLink;
use agents::triage::messages::TriageMsg;
use anyhow::Context;
use ractor::{Actor, ActorRef};
use state::model::FixPlan;
use state::trees::cursors::PIPELINE;
use state::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::tree::{
    ChildSpec, Intensity, Registry, Restart, RootExit, RootHandle, Strategy, SupervisorSpec,
    start_root, supervisor_child,
};

/// How the application stopped.
#[derive(Debug, PartialEq)]
pub enum Stopped {
    /// A shutdown signal: everything drained and flushed.
    Graceful,
    /// The supervision tree exceeded its restart intensity.
    GaveUp(String),
}

pub struct Application {
    listener: TcpListener,
    app: AppState,
    root: RootHandle,
    faults: Arc<Faults>,
    shutdown_timeout: Duration,
}

/// Latest reference of each stage, for the stages upstream of it.
#[derive(Default)]
struct Slots {
    fixes: Mutex<Option<ActorRef<FixesMsg>>>,
    rca: Mutex<Option<ActorRef<RcaMsg>>>,
    triage: Mutex<Option<ActorRef<TriageMsg>>>,
    detect: Mutex<Option<ActorRef<DetectMsg>>>,
}

fn take<T: Clone>(slot: &Mutex<Option<T>>, what: &str) -> anyhow::Result<T> {
    slot.lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .with_context(|| format!("{what} is not running"))
}

fn put<T>(slot: &Mutex<Option<T>>, v: T) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
}

impl Application {
    /// Open the store, start the tree, bind the listener (port 0 allowed).
    pub async fn build(cfg: Config) -> anyhow::Result<Application> {
        let store_cfg = StoreConfig {
            path: cfg.data_dir.clone(),
            cache_bytes: cfg.cache_mb * 1024 * 1024,
        };
        let store = tokio::task::spawn_blocking(move || Store::open(&store_cfg))
            .await?
            .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))?;
        let user_signatures = match &cfg.signatures_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading signatures file {}", p.display()))?,
            ),
            None => None,
        };
        let catalogue = Arc::new(Catalogue::from_toml(BUILTIN, user_signatures.as_deref())?);
        let rca = Arc::new(rca_shared(&cfg, &store)?);
        let detect_gauges = Arc::new(DetectGauges::default());
        let commit = GroupCommit::start(store.clone());
        let faults = Arc::new(Faults::default());
        let registry = Registry::default();
        let audit = state::trees::Audit::open(store.open_tree("audit")?)?;
        let recovery = crate::api::actions::RecoveryHandle::new(&store, audit)?;
        let on_plan = plans_to_recovery(&cfg, &recovery);
        outcomes_to_fix_stats(&recovery, &rca);
        let mut root_spec = tree_spec(Wiring {
            cfg: &cfg,
            store: &store,
            commit: &commit,
            catalogue: catalogue.clone(),
            faults: &faults,
            registry: &registry,
            rca: &rca,
            detect_gauges: &detect_gauges,
            on_plan,
        });
        root_spec.children.push(crate::recovery::child_spec(
            &cfg, &store, &registry, &recovery,
        ));
        root_spec
            .children
            .push(crate::recovery::notify_spec(&cfg, &store, &recovery));
        let root = start_root(root_spec, registry.clone()).await?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let app = AppState {
            store,
            commit,
            registry,
            metrics: Default::default(),
            api_key: cfg.api_key.as_ref().map(|k| Arc::new(k.0.clone())),
            max_body_bytes: cfg.max_body_bytes,
            wal_limit_bytes: cfg.wal.retention_bytes,
            recovery,
            catalogue,
            rca,
            detect: detect_gauges,
        };
        Ok(Application {
            listener,
            app,
            root,
            faults,
            shutdown_timeout: cfg.supervision.shutdown_timeout.0,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Fault injection into the stages (tests, chaos).
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    pub fn registry(&self) -> Registry {
        self.app.registry.clone()
    }

    pub fn store(&self) -> Store {
        self.app.store.clone()
    }

    /// The recovery stage's handle (event sinks, intents, audit log).
    pub fn recovery(&self) -> crate::api::actions::RecoveryHandle {
        self.app.recovery.clone()
    }

    /// Serve until `shutdown` resolves (graceful) or the tree gives up.
    /// Either way: stop HTTP, stop stages in reverse order, flush the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Stopped> {
        let Application {
            listener,
            app,
            mut root,
            shutdown_timeout,
            ..
        } = self;
        let store = app.store.clone();
        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, api::router(app)).with_graceful_shutdown(async move {
            let _ = http_stopped.await;
        });
        let server = tokio::spawn(async move { server.await });
        let outcome = tokio::select! {
            _ = shutdown => Stopped::Graceful,
            exit = root.exited() => match exit {
                RootExit::GaveUp(reason) => Stopped::GaveUp(reason),
                RootExit::Normal => Stopped::GaveUp("supervision tree stopped".into()),
            },
        };
        tracing::info!(
            ?outcome,
            "stopping: HTTP first, then stages in reverse order"
        );
        let _ = stop_http.send(());
        match tokio::time::timeout(shutdown_timeout, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "http server task failed"),
            Err(_) => tracing::warn!("http connections did not drain in time"),
        }
        if outcome == Stopped::Graceful
            && let Err(e) = root.shutdown(shutdown_timeout).await
        {
            tracing::warn!(error = %e, "supervision tree shutdown");
        }
        tokio::task::spawn_blocking(move || store.flush())
            .await?
            .context("flushing the store")?;
        Ok(outcome)
    }
}

fn rca_shared(cfg: &Config, store: &Store) -> anyhow::Result<RcaShared> {
    let user_causes = match &cfg.rca.causes_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading causes file {}", p.display()))?,
        ),
        None => None,
    };
    let ms = |d: Duration| d.as_millis() as i64;
    let settings = RcaSettings {
        dependencies: cfg.rca.dependencies.clone(),
        kinds: cfg.rca.kinds.clone(),
        user_causes,
        correlate: CorrelateConfig {
            window_ms: ms(cfg.rca.correlation_window.0),
            flap_window_ms: ms(cfg.rca.flap_window.0),
            quiet_ms: ms(cfg.rca.auto_resolve_after.0),
        },
        fix_cooldown_ms: ms(cfg.rca.fix_cooldown.0),
        thompson: cfg.rca.thompson_sampling,
    };
    RcaShared::load(store, settings).context("loading the knowledge base of causes")
}

/// Fix plans go to the recovery stage (whichever incarnation is running)
/// when at least one of their fixes is a configured action; a plan of fixes
/// nobody configured stays advice, shown with the diagnosis.
fn plans_to_recovery(cfg: &Config, recovery: &crate::api::actions::RecoveryHandle) -> PlanSink {
    let actor = recovery.actor.clone();
    let configured: std::collections::BTreeSet<String> =
        cfg.recovery.actions.keys().cloned().collect();
    Arc::new(move |plan: FixPlan| {
        if !plan.steps.iter().any(|s| configured.contains(&s.fix)) {
            tracing::debug!(incident = %plan.incident_id, "no fix of the plan is a configured action");
            return;
        }
        match actor.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(r) => {
                if let Err(e) = r.cast(RecoveryMsg::Plan(plan)) {
                    tracing::warn!(error = %e, "recovery stage did not take a fix plan");
                }
            }
            None => tracing::warn!(
                incident = %plan.incident_id,
                "recovery stage not running; fix plan dropped"
            ),
        }
    })
}

/// Verified outcomes of recovery feed fix selection's statistics (and every
/// attempt its cooldown and per-incident memory).
fn outcomes_to_fix_stats(recovery: &crate::api::actions::RecoveryHandle, rca: &Arc<RcaShared>) {
    let rca = rca.clone();
    recovery.sinks.add(Arc::new(move |e: RecoveryEvent| {
        if let RecoveryEvent::Outcome(o) = e {
            let rca = rca.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(err) = rca.fix_stats.record(&o) {
                    tracing::warn!(error = %err, fix = %o.fix, "recording a fix outcome");
                }
                rca.learned();
            });
        }
    }));
}

/// What the pipeline's stages are built from.
struct Wiring<'a> {
    cfg: &'a Config,
    store: &'a Store,
    commit: &'a GroupCommit,
    catalogue: Arc<Catalogue>,
    faults: &'a Arc<Faults>,
    registry: &'a Registry,
    rca: &'a Arc<RcaShared>,
    detect_gauges: &'a Arc<DetectGauges>,
    on_plan: PlanSink,
}

fn tree_spec(w: Wiring<'_>) -> SupervisorSpec {
    let Wiring {
        cfg,
        store,
        commit,
        catalogue,
        faults,
        registry,
        rca,
        detect_gauges,
        on_plan,
    } = w;
    let intensity = Intensity {
        max_restarts: cfg.supervision.max_restarts,
        period: cfg.supervision.period.0,
    };
    let shutdown = cfg.supervision.shutdown_timeout.0;
    let slots = Arc::new(Slots::default());
    let fixes_h = Arc::new(StageHealth::default());
    let rca_h = Arc::new(StageHealth::default());
    let triage_h = Arc::new(StageHealth::default());
    let detect_h = Arc::new(StageHealth::default());
    let ingest_h = Arc::new(StageHealth::default());
    let committed = Arc::new(watch::Sender::new(
        store.cursors().get(PIPELINE).unwrap_or(0),
    ));

    let fixes = {
        let (shared, slots, h) = (rca.clone(), slots.clone(), fixes_h.clone());
        ChildSpec::new("fixes", Restart::Permanent, move |sup| {
            let args = PlannerArgs {
                shared: shared.clone(),
                health: h.clone(),
                on_plan: Some(on_plan.clone()),
            };
            let slots = slots.clone();
            async move {
                let (r, _) = Actor::spawn_linked(None, Planner, args, sup).await?;
                put(&slots.fixes, r.clone());
                Ok(r.get_cell())
            }
        })
        .with_health(fixes_h.clone())
        .with_shutdown(shutdown)
    };

    let analyst = {
        let (shared, slots, h) = (rca.clone(), slots.clone(), rca_h.clone());
        ChildSpec::new("rca", Restart::Permanent, move |sup| {
            let (shared, slots, h) = (shared.clone(), slots.clone(), h.clone());
            async move {
                let args = AnalystArgs {
                    shared,
                    fixes: Some(take(&slots.fixes, "fixes")?),
                    health: h,
                    tick: Duration::from_secs(5),
                };
                let (r, _) = Actor::spawn_linked(None, Analyst, args, sup).await?;
                put(&slots.rca, r.clone());
                Ok(r.get_cell())
            }
        })
        .with_health(rca_h.clone())
        .with_shutdown(shutdown)
    };

    let triage = {
        let rca = rca.clone();
        let (store, slots, h, faults, committed) = (
            store.clone(),
            slots.clone(),
            triage_h.clone(),
            faults.clone(),
            committed.clone(),
        );
        let dedup = DedupConfig {
            window_ms: cfg.triage.dedup_window.0.as_millis() as i64,
        };
        ChildSpec::new("triage", Restart::Permanent, move |sup| {
            let (store, dedup, h, faults, committed, rca) = (
                store.clone(),
                dedup.clone(),
                h.clone(),
                faults.clone(),
                committed.clone(),
                rca.clone(),
            );
            let slots = slots.clone();
            async move {
                let args = TriagerArgs {
                    store,
                    dedup,
                    health: h,
                    faults,
                    committed,
                    rca: Some(RcaLink {
                        shared: rca,
                        analyst: take(&slots.rca, "rca")?,
                    }),
                };
                let (r, _) = Actor::spawn_linked(None, Triager, args, sup).await?;
                put(&slots.triage, r.clone());
                Ok(r.get_cell())
            }
        })
        .with_health(triage_h.clone())
        .with_shutdown(shutdown)
    };

    let detect = {
        let (slots, h, th, faults) = (
            slots.clone(),
            detect_h.clone(),
            triage_h.clone(),
            faults.clone(),
        );
        let stats = StatsArgs {
            store: store.clone(),
            cfg: cfg.detect.clone(),
            gauges: detect_gauges.clone(),
        };
        let detect_store = store.clone();
        ChildSpec::new("detect", Restart::Permanent, move |sup| {
            let (slots, h, th, faults, catalogue, stats) = (
                slots.clone(),
                h.clone(),
                th.clone(),
                faults.clone(),
                catalogue.clone(),
                stats.clone(),
            );
            let store = detect_store.clone();
            async move {
                let args = DetectorArgs {
                    catalogue,
                    triage: take(&slots.triage, "triage")?,
                    triage_health: th,
                    health: h,
                    faults,
                    stats: Some(stats),
                    templates: Some(state::trees::templates::Templates::open(&store)?),
                };
                let (r, _) = Actor::spawn_linked(None, Detector, args, sup).await?;
                put(&slots.detect, r.clone());
                Ok(r.get_cell())
            }
        })
        .with_health(detect_h.clone())
        .with_shutdown(shutdown)
    };

    let ingest = {
        let (store, slots, h, dh, faults, committed) = (
            store.clone(),
            slots.clone(),
            ingest_h.clone(),
            detect_h.clone(),
            faults.clone(),
            committed.clone(),
        );
        let wal_head = commit.subscribe();
        let hot = commit.hot();
        let max_inflight = cfg.wal.max_inflight_batches;
        ChildSpec::new("ingest", Restart::Permanent, move |sup| {
            let (store, slots, h, dh, faults) = (
                store.clone(),
                slots.clone(),
                h.clone(),
                dh.clone(),
                faults.clone(),
            );
            let (wal_head, committed, hot) = (wal_head.clone(), committed.subscribe(), hot.clone());
            async move {
                let args = IngestorArgs {
                    store,
                    detect: take(&slots.detect, "detect")?,
                    detect_health: dh,
                    health: h,
                    faults,
                    wal_head,
                    committed,
                    max_inflight,
                    hot,
                };
                let (r, _) = Actor::spawn_linked(None, Ingestor, args, sup).await?;
                Ok(r.get_cell())
            }
        })
        .with_health(ingest_h.clone())
        .with_shutdown(shutdown)
    };

    let pipeline = SupervisorSpec {
        name: "pipeline".into(),
        strategy: Strategy::RestForOne,
        intensity,
        stuck_after: Some(cfg.supervision.stuck_after.0),
        children: vec![fixes, analyst, triage, detect, ingest],
    };

    let retention = {
        let args = RetentionArgs {
            store: store.clone(),
            max_age: cfg.wal.retention_age.0,
            max_bytes: cfg.wal.retention_bytes,
            every: Duration::from_secs(30),
        };
        ChildSpec::new("retention", Restart::Permanent, move |sup| {
            let args = args.clone();
            async move {
                let (r, _) = Actor::spawn_linked(None, Retention, args, sup).await?;
                Ok(r.get_cell())
            }
        })
        .with_shutdown(shutdown)
    };

    SupervisorSpec {
        name: "root".into(),
        strategy: Strategy::OneForOne,
        intensity,
        stuck_after: None,
        children: vec![supervisor_child(pipeline, registry.clone()), retention],
    }
}
