//! Behaviour of the tree with a `Flaky` child that can panic, return an
//! error, freeze, stop normally or refuse to start, watched by a `Probe`
//! that records starts and stops. No fixed sleeps: conditions are polled
//! with a deadline.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::health::StageHealth;
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};

use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct ProbeInner {
    starts: HashMap<String, u32>,
    refs: HashMap<String, ActorRef<FlakyMsg>>,
    log: Vec<String>,
    refuse_start: HashSet<String>,
    /// Remaining instances that fail right after starting.
    fail_after_start: HashMap<String, u32>,
}

#[derive(Clone, Default)]
struct Probe(Arc<Mutex<ProbeInner>>);

impl Probe {
    fn with<R>(&self, f: impl FnOnce(&mut ProbeInner) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
    fn starts(&self, id: &str) -> u32 {
        self.with(|p| p.starts.get(id).copied().unwrap_or(0))
    }
    fn log(&self) -> Vec<String> {
        self.with(|p| p.log.clone())
    }
    fn send(&self, id: &str, msg: FlakyMsg) {
        let r = self
            .with(|p| p.refs.get(id).cloned())
            .expect("child started");
        r.send_message(msg).expect("child alive");
    }
    fn cell(&self, id: &str) -> ActorRef<FlakyMsg> {
        self.with(|p| p.refs.get(id).cloned())
            .expect("child started")
    }
}

enum FlakyMsg {
    Panic,
    Fail,
    Freeze,
    Stop,
}

struct Flaky;

struct FlakyArgs {
    id: String,
    probe: Probe,
}

/// Logs `killed:<id>` when the frozen handler is dropped (the actor was
/// killed mid-message).
struct KilledGuard(String, Probe);

impl Drop for KilledGuard {
    fn drop(&mut self) {
        let id = format!("killed:{}", self.0);
        self.1.with(|p| p.log.push(id));
    }
}

impl Actor for Flaky {
    type Msg = FlakyMsg;
    type State = FlakyArgs;
    type Arguments = FlakyArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<FlakyMsg>,
        args: FlakyArgs,
    ) -> Result<FlakyArgs, ActorProcessingErr> {
        let refused = args.probe.with(|p| {
            if p.refuse_start.contains(&args.id) {
                return true;
            }
            *p.starts.entry(args.id.clone()).or_default() += 1;
            p.refs.insert(args.id.clone(), myself.clone());
            false
        });
        if refused {
            return Err(format!("{} refusing to start", args.id).into());
        }
        Ok(args)
    }

    async fn post_start(
        &self,
        _myself: ActorRef<FlakyMsg>,
        st: &mut FlakyArgs,
    ) -> Result<(), ActorProcessingErr> {
        let fail = st.probe.with(|p| match p.fail_after_start.get_mut(&st.id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        });
        if fail {
            return Err(format!("{} always fails", st.id).into());
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<FlakyMsg>,
        st: &mut FlakyArgs,
    ) -> Result<(), ActorProcessingErr> {
        st.probe.with(|p| p.log.push(format!("stop:{}", st.id)));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<FlakyMsg>,
        msg: FlakyMsg,
        st: &mut FlakyArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FlakyMsg::Panic => panic!("{} panicked on purpose", st.id),
            FlakyMsg::Fail => Err(format!("{} returned an error", st.id).into()),
            FlakyMsg::Freeze => {
                let _guard = KilledGuard(st.id.clone(), st.probe.clone());
                st.probe.with(|p| p.log.push(format!("frozen:{}", st.id)));
                std::future::pending::<()>().await;
                Ok(())
            }
            FlakyMsg::Stop => {
                myself.stop(None);
                Ok(())
            }
        }
    }
}

fn flaky(id: &str, restart: Restart, probe: &Probe) -> ChildSpec {
    let probe = probe.clone();
    let id_owned = id.to_string();
    ChildSpec::new(id, restart, move |sup| {
        let args = FlakyArgs {
            id: id_owned.clone(),
            probe: probe.clone(),
        };
        async move {
            let (actor, _) = Actor::spawn_linked(None, Flaky, args, sup).await?;
            Ok(actor.get_cell())
        }
    })
}

fn sup(name: &str, strategy: Strategy, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        name: name.to_string(),
        strategy,
        intensity: Intensity {
            max_restarts: 10,
            period: Duration::from_secs(60),
        },
        stuck_after: None,
        children,
    }
}

fn limit(max_restarts: u32) -> Intensity {
    Intensity {
        max_restarts,
        period: Duration::from_secs(60),
    }
}

async fn wait_until(mut cond: impl FnMut() -> bool, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn status(reg: &Registry, path: &str) -> ChildStatus {
    reg.get(path)
        .unwrap_or_else(|| panic!("no registry row for {path}"))
}

fn running_with_restarts(reg: &Registry, path: &str, n: u64) -> bool {
    reg.get(path)
        .is_some_and(|s| s.restarts == n && s.status == ChildState::Running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_failed_child() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        ["a", "b", "c"]
            .iter()
            .map(|id| flaky(id, Restart::Permanent, &probe))
            .collect(),
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    probe.send("b", FlakyMsg::Panic);
    assert!(wait_until(|| running_with_restarts(&reg, "root/b", 1), DEADLINE).await);
    probe.send("b", FlakyMsg::Fail);
    assert!(wait_until(|| running_with_restarts(&reg, "root/b", 2), DEADLINE).await);

    assert_eq!(
        (probe.starts("a"), probe.starts("b"), probe.starts("c")),
        (1, 3, 1)
    );
    assert!(
        probe.log().is_empty(),
        "no sibling stopped: {:?}",
        probe.log()
    );
    let b = status(&reg, "root/b");
    assert!(
        b.last_failure
            .as_deref()
            .is_some_and(|f| f.contains("b returned an error"))
    );
    assert!(b.last_failure_ms.is_some());
    assert_eq!(status(&reg, "root/a").restarts, 0);
    assert_eq!(status(&reg, "root/c").restarts, 0);
    assert!(status(&reg, "root").is_supervisor);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_failed_and_later_children_only() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::RestForOne,
        ["a", "b", "c", "d"]
            .iter()
            .map(|id| flaky(id, Restart::Permanent, &probe))
            .collect(),
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    probe.send("b", FlakyMsg::Panic);
    assert!(
        wait_until(
            || ["b", "c", "d"].iter().all(|id| running_with_restarts(
                &reg,
                &format!("root/{id}"),
                1
            )),
            DEADLINE
        )
        .await
    );
    assert_eq!(
        ["a", "b", "c", "d"].map(|id| probe.starts(id)),
        [1, 2, 2, 2]
    );
    // Later children stopped in reverse order; the earlier one untouched.
    assert_eq!(probe.log(), ["stop:d", "stop:c"]);
    assert_eq!(status(&reg, "root/a").restarts, 0);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_restarted_after_panic_not_after_normal_stop() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("t", Restart::Transient, &probe),
            flaky("u", Restart::Transient, &probe),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    probe.send("t", FlakyMsg::Stop);
    assert!(
        wait_until(
            || status(&reg, "root/t").status == ChildState::Stopped,
            DEADLINE
        )
        .await
    );
    assert_eq!(probe.starts("t"), 1);
    assert_eq!(status(&reg, "root/t").restarts, 0);

    probe.send("u", FlakyMsg::Panic);
    assert!(wait_until(|| running_with_restarts(&reg, "root/u", 1), DEADLINE).await);
    assert_eq!(probe.starts("u"), 2);
    assert!(
        status(&reg, "root/u")
            .last_failure
            .is_some_and(|f| f.contains("u panicked on purpose"))
    );
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_never_restarted() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("p", Restart::Temporary, &probe),
            flaky("q", Restart::Temporary, &probe),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    probe.send("p", FlakyMsg::Panic);
    probe.send("q", FlakyMsg::Stop);
    assert!(
        wait_until(
            || status(&reg, "root/p").status == ChildState::Failed,
            DEADLINE
        )
        .await
    );
    assert!(
        wait_until(
            || status(&reg, "root/q").status == ChildState::Stopped,
            DEADLINE
        )
        .await
    );
    assert_eq!((probe.starts("p"), probe.starts("q")), (1, 1));
    assert_eq!(status(&reg, "root/p").restarts, 0);
    assert!(
        status(&reg, "root/p")
            .last_failure
            .is_some_and(|f| f.contains("p panicked"))
    );
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalates_when_intensity_exceeded() {
    let probe = Probe::default();
    let reg = Registry::new();
    // The nested supervisor tolerates 1 restart; `bad` fails twice, so the
    // nested supervisor gives up once, then its restart by root succeeds.
    probe.with(|p| p.fail_after_start.insert("bad".into(), 2));
    let mut pipeline = sup(
        "pipeline",
        Strategy::OneForOne,
        vec![flaky("bad", Restart::Permanent, &probe)],
    );
    pipeline.intensity = limit(1);
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            supervisor_child(pipeline, reg.clone()),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    assert!(wait_until(|| running_with_restarts(&reg, "root/pipeline", 1), DEADLINE).await);
    let p = status(&reg, "root/pipeline");
    assert!(p.is_supervisor);
    let failure = p.last_failure.unwrap();
    assert!(
        failure.contains("supervisor `root/pipeline` gave up")
            && failure.contains("`bad`")
            && failure.contains("bad always fails"),
        "{failure}"
    );
    assert!(
        wait_until(
            || status(&reg, "root/pipeline/bad").status == ChildState::Running,
            DEADLINE
        )
        .await
    );
    assert_eq!(probe.starts("bad"), 3);
    assert_eq!(
        probe.starts("a"),
        1,
        "sibling of the escalating supervisor untouched"
    );
    assert_eq!(status(&reg, "root").status, ChildState::Running);
    assert_eq!(root.try_exit(), None);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_gives_up_when_intensity_exceeded() {
    let probe = Probe::default();
    let reg = Registry::new();
    probe.with(|p| p.fail_after_start.insert("bad".into(), u32::MAX));
    let mut pipeline = sup(
        "pipeline",
        Strategy::OneForOne,
        vec![flaky("bad", Restart::Permanent, &probe)],
    );
    pipeline.intensity = limit(1);
    let mut spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            supervisor_child(pipeline, reg.clone()),
        ],
    );
    spec.intensity = limit(1);
    let mut root = start_root(spec, reg.clone()).await.unwrap();

    let exit = tokio::time::timeout(DEADLINE, root.exited()).await.unwrap();
    let RootExit::GaveUp(reason) = exit else {
        panic!("expected GaveUp, got {exit:?}");
    };
    assert!(
        reason.contains("supervisor `root` gave up")
            && reason.contains("`pipeline`")
            && reason.contains("bad always fails"),
        "{reason}"
    );
    // Root stopped its remaining children before failing.
    assert!(probe.log().contains(&"stop:a".to_string()));
    assert_eq!(status(&reg, "root").status, ChildState::Failed);
    assert_eq!(status(&reg, "root/a").status, ChildState::Stopped);
    assert!(
        root.cell().wait(Some(DEADLINE)).await.is_ok(),
        "root stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_restart_counts_toward_intensity() {
    let probe = Probe::default();
    let reg = Registry::new();
    let mut spec = sup(
        "root",
        Strategy::OneForOne,
        vec![flaky("x", Restart::Permanent, &probe)],
    );
    spec.intensity = limit(2);
    let mut root = start_root(spec, reg.clone()).await.unwrap();

    probe.with(|p| p.refuse_start.insert("x".into()));
    probe.send("x", FlakyMsg::Panic);
    let exit = tokio::time::timeout(DEADLINE, root.exited()).await.unwrap();
    assert!(
        matches!(&exit, RootExit::GaveUp(r) if r.contains("`x`") && r.contains("x refusing to start")),
        "{exit:?}"
    );
    assert_eq!(probe.starts("x"), 1);
    assert_eq!(status(&reg, "root/x").status, ChildState::Failed);
    assert_eq!(status(&reg, "root").status, ChildState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_start_failure_fails_start_root_and_stops_started_children() {
    let probe = Probe::default();
    let reg = Registry::new();
    probe.with(|p| p.refuse_start.insert("b".into()));
    let spec = sup(
        "root",
        Strategy::OneForOne,
        ["a", "b", "c"]
            .iter()
            .map(|id| flaky(id, Restart::Permanent, &probe))
            .collect(),
    );
    let err = start_root(spec, reg.clone())
        .await
        .err()
        .expect("start fails");
    assert!(
        format!("{err:#}").contains("b refusing to start"),
        "{err:#}"
    );
    assert_eq!(probe.log(), ["stop:a"]);
    assert_eq!(probe.starts("c"), 0);
    assert_eq!(status(&reg, "root/b").status, ChildState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_rejected() {
    let probe = Probe::default();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            flaky("a", Restart::Permanent, &probe),
        ],
    );
    let err = start_root(spec, Registry::new())
        .await
        .err()
        .expect("rejected");
    assert!(
        format!("{err:#}").contains("duplicate child id `a`"),
        "{err:#}"
    );
    assert_eq!(probe.starts("a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_child_is_killed_and_restarted() {
    let probe = Probe::default();
    let reg = Registry::new();
    let health = Arc::new(StageHealth::default());
    let idle = Arc::new(StageHealth::default());
    let mut spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("s", Restart::Permanent, &probe).with_health(health.clone()),
            flaky("idle", Restart::Permanent, &probe).with_health(idle.clone()),
        ],
    );
    spec.stuck_after = Some(Duration::from_millis(150));
    let root = start_root(spec, reg.clone()).await.unwrap();

    health.note_enqueued();
    health.note_enqueued();
    probe.send("s", FlakyMsg::Freeze);
    assert!(wait_until(|| running_with_restarts(&reg, "root/s", 1), DEADLINE).await);
    let s = status(&reg, "root/s");
    let failure = s.last_failure.unwrap();
    assert!(
        failure.starts_with("stuck: 2 pending, no progress for "),
        "{failure}"
    );
    assert_eq!(health.pending(), 0, "pending reset after restart");
    assert_eq!(probe.starts("s"), 2);
    assert!(probe.log().contains(&"killed:s".to_string()));
    // A child without pending work is never stuck, however long it idles.
    assert_eq!(status(&reg, "root/idle").restarts, 0);
    assert_eq!(probe.starts("idle"), 1);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_in_reverse_and_kills_a_child_ignoring_stop() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            flaky("b", Restart::Permanent, &probe).with_shutdown(Duration::from_millis(100)),
            flaky("c", Restart::Permanent, &probe),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();
    let b = probe.cell("b");

    probe.send("b", FlakyMsg::Freeze);
    assert!(wait_until(|| probe.log().contains(&"frozen:b".to_string()), DEADLINE).await);
    root.shutdown(DEADLINE).await.unwrap();

    assert_eq!(probe.log(), ["frozen:b", "stop:c", "killed:b", "stop:a"]);
    assert_eq!(b.get_status(), ActorStatus::Stopped);
    for path in ["root", "root/a", "root/b", "root/c"] {
        assert_eq!(status(&reg, path).status, ChildState::Stopped, "{path}");
    }
    assert_eq!(status(&reg, "root/b").restarts, 0, "stopped, not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_shutdown_stops_the_subtree_in_reverse() {
    let probe = Probe::default();
    let reg = Registry::new();
    let inner = sup(
        "pipeline",
        Strategy::RestForOne,
        vec![
            flaky("p1", Restart::Permanent, &probe),
            flaky("p2", Restart::Permanent, &probe),
        ],
    );
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            supervisor_child(inner, reg.clone()),
            flaky("z", Restart::Permanent, &probe),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();
    let paths: Vec<String> = reg.snapshot().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        [
            "root",
            "root/a",
            "root/pipeline",
            "root/z",
            "root/pipeline/p1",
            "root/pipeline/p2"
        ]
    );
    root.shutdown(DEADLINE).await.unwrap();
    assert_eq!(probe.log(), ["stop:z", "stop:p2", "stop:p1", "stop:a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_is_normal_after_the_root_stops() {
    let probe = Probe::default();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![flaky("a", Restart::Permanent, &probe)],
    );
    let mut root = start_root(spec, Registry::new()).await.unwrap();
    root.cell().stop(None);
    let exit = tokio::time::timeout(DEADLINE, root.exited()).await.unwrap();
    assert_eq!(exit, RootExit::Normal);
    assert_eq!(probe.log(), ["stop:a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_restart_restarts_exactly_that_child() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::RestForOne,
        ["a", "b", "c"]
            .iter()
            .map(|id| flaky(id, Restart::Permanent, &probe))
            .collect(),
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    reg.restart("root/b").await.unwrap();
    assert_eq!(["a", "b", "c"].map(|id| probe.starts(id)), [1, 2, 1]);
    assert_eq!(probe.log(), ["stop:b"]);
    assert_eq!(status(&reg, "root/b").restarts, 1);
    assert_eq!(status(&reg, "root/b").status, ChildState::Running);

    let unknown = reg.restart("root/nope").await.unwrap_err();
    assert!(
        unknown.to_string().contains("unknown child `root/nope`"),
        "{unknown}"
    );
    assert!(reg.restart("root").await.is_err());
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reports_events_and_pending_from_health() {
    let probe = Probe::default();
    let reg = Registry::new();
    let health = Arc::new(StageHealth::default());
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![flaky("h", Restart::Permanent, &probe).with_health(health.clone())],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();
    health.note_enqueued();
    health.note_enqueued();
    health.note_handled(7);
    let h = status(&reg, "root/h");
    assert_eq!((h.events_processed, h.pending), (7, 1));
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(json["status"], "running");
    assert_eq!(json["path"], "root/h");
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_restarted_after_being_killed() {
    let probe = Probe::default();
    let reg = Registry::new();
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![flaky("t", Restart::Transient, &probe)],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();
    probe.cell("t").kill();
    assert!(wait_until(|| running_with_restarts(&reg, "root/t", 1), DEADLINE).await);
    assert_eq!(probe.starts("t"), 2);
    assert_eq!(
        status(&reg, "root/t").last_failure.as_deref(),
        Some("killed")
    );
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_restart_of_a_nested_supervisor_restarts_its_subtree() {
    let probe = Probe::default();
    let reg = Registry::new();
    let inner = sup(
        "pipeline",
        Strategy::OneForOne,
        vec![
            flaky("p1", Restart::Permanent, &probe),
            flaky("p2", Restart::Permanent, &probe),
        ],
    );
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![
            flaky("a", Restart::Permanent, &probe),
            supervisor_child(inner, reg.clone()),
        ],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();

    reg.restart("root/pipeline").await.unwrap();
    assert_eq!(probe.log(), ["stop:p2", "stop:p1"]);
    assert_eq!(["a", "p1", "p2"].map(|id| probe.starts(id)), [1, 2, 2]);
    assert_eq!(status(&reg, "root/pipeline").restarts, 1);
    // The new instance of the nested supervisor serves restarts again.
    reg.restart("root/pipeline/p2").await.unwrap();
    assert_eq!(probe.starts("p2"), 3);
    assert_eq!(status(&reg, "root/pipeline/p2").restarts, 1);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nested_supervisor_leaves_no_running_rows() {
    let probe = Probe::default();
    let reg = Registry::new();
    let inner = sup(
        "pipeline",
        Strategy::OneForOne,
        vec![flaky("f", Restart::Permanent, &probe).with_shutdown(Duration::from_secs(60))],
    );
    let spec = sup(
        "root",
        Strategy::OneForOne,
        vec![supervisor_child(inner, reg.clone()).with_shutdown(Duration::from_millis(100))],
    );
    let root = start_root(spec, reg.clone()).await.unwrap();
    let f = probe.cell("f");
    probe.send("f", FlakyMsg::Freeze);
    assert!(wait_until(|| probe.log().contains(&"frozen:f".to_string()), DEADLINE).await);

    root.shutdown(DEADLINE).await.unwrap();
    // Killing the nested supervisor cascades to its frozen child.
    assert!(f.get_cell().wait(Some(DEADLINE)).await.is_ok());
    for row in reg.snapshot() {
        assert_eq!(row.status, ChildState::Stopped, "{}", row.path);
    }
}

/// Benchmark, not a test: prints restart latency figures (panic in a
/// child → new instance running). Run with
/// `cargo test --release -p supervisor --lib tree::tests::bench_restart_latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn bench_restart_latency() {
    const N: usize = 2000;
    // Keep the panic hook quiet so it does not dominate the figure.
    std::panic::set_hook(Box::new(|_| {}));
    let probe = Probe::default();
    let reg = Registry::new();
    let mut spec = sup(
        "root",
        Strategy::OneForOne,
        vec![flaky("x", Restart::Permanent, &probe)],
    );
    spec.intensity = limit(u32::MAX);
    let root = start_root(spec, reg.clone()).await.unwrap();
    let mut micros = Vec::with_capacity(N);
    for i in 0..N {
        let t0 = std::time::Instant::now();
        probe.send(
            "x",
            if i % 2 == 0 {
                FlakyMsg::Panic
            } else {
                FlakyMsg::Fail
            },
        );
        while probe.starts("x") as usize != i + 2 {
            tokio::task::yield_now().await;
        }
        micros.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let _ = std::panic::take_hook();
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| micros[((N as f64 - 1.0) * p) as usize];
    println!(
        "restart latency over {N} restarts (panic/err alternating): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pct(0.5),
        pct(0.99),
        micros[N - 1]
    );
    assert!(wait_until(|| status(&reg, "root/x").restarts == N as u64, DEADLINE).await);
    root.shutdown(DEADLINE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_mid_rest_for_one_restart_leaves_every_row_stopped_or_failed() {
    let probe = Probe::default();
    let reg = Registry::new();
    let mut spec = sup(
        "root",
        Strategy::RestForOne,
        ["a", "b", "c", "d"]
            .iter()
            .map(|id| flaky(id, Restart::Permanent, &probe))
            .collect(),
    );
    spec.intensity = limit(1);
    let mut root = start_root(spec, reg.clone()).await.unwrap();

    probe.with(|p| p.refuse_start.insert("b".into()));
    probe.send("b", FlakyMsg::Panic);
    let exit = tokio::time::timeout(DEADLINE, root.exited()).await.unwrap();
    assert!(
        matches!(&exit, RootExit::GaveUp(r) if r.contains("b refusing to start")),
        "{exit:?}"
    );
    assert_eq!(probe.log(), ["stop:d", "stop:c", "stop:a"]);
    let states: Vec<ChildState> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| status(&reg, &format!("root/{id}")).status)
        .collect();
    assert_eq!(
        states,
        [
            ChildState::Stopped,
            ChildState::Failed,
            ChildState::Stopped,
            ChildState::Stopped
        ]
    );
}
