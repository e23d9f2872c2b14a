//! The recovery actor alone: real commands, real store, events collected.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use state::Store;
use state::model::{FixPlan, Layer, PlannedFix, Risk};
use state::trees::{Audit, IntentPhase, Intents};

use super::actor::{Recoverer, RecovererArgs};
use super::config::{ActionConfig, ActionKind, Check, Mode, RecoveryConfig, Span, Verification};
use super::exec::{Executors, http_client};
use super::messages::{RecoveryEvent, RecoveryMsg};

struct Rig {
    store: Store,
    audit: Audit,
    events: Arc<Mutex<Vec<RecoveryEvent>>>,
    cfg: Arc<RecoveryConfig>,
}

impl Rig {
    fn new(store: Store, cfg: RecoveryConfig) -> Rig {
        let audit = Audit::open(store.open_tree("audit").unwrap()).unwrap();
        Rig {
            store,
            audit,
            events: Default::default(),
            cfg: Arc::new(cfg),
        }
    }

    async fn spawn(&self) -> ActorRef<RecoveryMsg> {
        let events = self.events.clone();
        let args = RecovererArgs {
            store: self.store.clone(),
            audit: self.audit.clone(),
            config: self.cfg.clone(),
            executors: Executors {
                http: http_client(),
                allowed_hosts: Arc::new(vec![]),
                store: self.store.clone(),
                snapshot_dir: std::env::temp_dir(),
                restart: None,
            },
            events: Arc::new(move |e| events.lock().unwrap().push(e)),
            health: Default::default(),
            tick: Duration::from_millis(50),
        };
        Actor::spawn(None, Recoverer, args).await.unwrap().0
    }

    fn events(&self) -> Vec<RecoveryEvent> {
        self.events.lock().unwrap().clone()
    }

    fn outcomes(&self) -> Vec<(String, bool, bool)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                RecoveryEvent::Outcome(o) => Some((o.fix, o.success, o.verified)),
                _ => None,
            })
            .collect()
    }

    fn decisions(&self) -> Vec<String> {
        self.audit
            .list(0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.draft.decision)
            .collect()
    }

    fn intents(&self) -> Intents {
        Intents::open(self.store.open_tree("recovery_intents").unwrap())
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `sh -c script` as an action, verified by `test -f <healed>`.
fn sh_action(script: String, healed: Option<&Path>) -> ActionConfig {
    ActionConfig {
        layer: Layer::Service,
        risk: Risk::Low,
        kind: ActionKind::Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script, "sh".into(), "{target}".into()],
            timeout: Span::secs(10),
        },
        verify: healed.map(|p| Verification {
            check: Check::Command {
                program: "/usr/bin/test".into(),
                args: vec!["-f".into(), p.display().to_string()],
                exit: 0,
            },
            within: Span::millis(400),
            hold: Span::millis(50),
            interval: Span::millis(20),
            timeout: Span::secs(2),
        }),
    }
}

fn step(fix: &str) -> PlannedFix {
    PlannedFix {
        fix: fix.into(),
        layer: Layer::Service,
        target: "api".into(),
        expected_success: 0.5,
        risk: Risk::Low,
        needs_approval: false,
        reason: String::new(),
    }
}

fn plan(incident: &str, fixes: &[&str]) -> FixPlan {
    FixPlan {
        incident_id: incident.into(),
        cause_id: Some("cause".into()),
        service: "api".into(),
        steps: fixes.iter().map(|f| step(f)).collect(),
        trace: Default::default(),
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn config(mode: Mode, actions: Vec<(&str, ActionConfig)>) -> RecoveryConfig {
    let mut c = RecoveryConfig {
        mode,
        ..RecoveryConfig::default()
    };
    c.budget.backoff_base = Span::millis(1);
    for (n, a) in actions {
        c.actions.insert(n.into(), a);
    }
    c
}

#[tokio::test]
async fn dry_run_executes_nothing_and_logs_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let a = sh_action(format!("echo x >> {}", ran.display()), Some(&ran));
    let rig = Rig::new(
        Store::temporary().unwrap(),
        config(Mode::DryRun, vec![("restart", a.clone()), ("reset", a)]),
    );
    let r = rig.spawn().await;
    r.cast(RecoveryMsg::Plan(plan("i1", &["restart", "reset"])))
        .unwrap();
    wait_until("the dry-run intent is done", || {
        rig.intents()
            .recent(10)
            .unwrap()
            .iter()
            .any(|i| i.is_done())
    })
    .await;
    assert_eq!(lines(&ran), 0);
    assert_eq!(rig.decisions(), vec!["proposed", "dry_run", "dry_run"]);
    assert!(rig.outcomes().is_empty());
    r.stop(None);
}

#[tokio::test]
async fn failed_fix_moves_to_the_next_and_a_verified_one_ends_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let healed = dir.path().join("healed");
    let bad = sh_action("exit 0".into(), Some(&healed)); // runs, heals nothing
    let good = sh_action(format!("touch {}", healed.display()), Some(&healed));
    let rig = Rig::new(
        Store::temporary().unwrap(),
        config(Mode::Auto, vec![("noop", bad), ("heal", good)]),
    );
    let r = rig.spawn().await;
    r.cast(RecoveryMsg::Plan(plan("i1", &["noop", "missing", "heal"])))
        .unwrap();
    wait_until("a verified outcome", || rig.outcomes().iter().any(|o| o.1)).await;
    assert_eq!(
        rig.outcomes(),
        vec![("noop".into(), false, true), ("heal".into(), true, true)]
    );
    let d = rig.decisions();
    assert_eq!(
        d,
        vec![
            "proposed",
            "executing",
            "executed",
            "verification_failed",
            "skipped",
            "executing",
            "executed",
            "verified"
        ]
    );
    assert_eq!(rig.audit.verify(), Ok(d.len() as u64));
    r.stop(None);
}

#[tokio::test]
async fn exhausted_plan_escalates() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never");
    let fail = sh_action("exit 3".into(), Some(&never));
    let rig = Rig::new(
        Store::temporary().unwrap(),
        config(Mode::Auto, vec![("fail", fail)]),
    );
    let r = rig.spawn().await;
    r.cast(RecoveryMsg::Plan(plan("i1", &["fail"]))).unwrap();
    wait_until("escalation", || {
        rig.events()
            .iter()
            .any(|e| matches!(e, RecoveryEvent::Escalated { .. }))
    })
    .await;
    assert_eq!(rig.outcomes(), vec![("fail".into(), false, false)]);
    assert_eq!(
        rig.decisions().last().map(String::as_str),
        Some("escalated")
    );
    r.stop(None);
}

#[tokio::test]
async fn approve_mode_waits_for_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let healed = dir.path().join("healed");
    let good = sh_action(format!("touch {}", healed.display()), Some(&healed));
    let rig = Rig::new(
        Store::temporary().unwrap(),
        config(Mode::Approve, vec![("heal", good)]),
    );
    let r = rig.spawn().await;
    r.cast(RecoveryMsg::Plan(plan("i1", &["heal"]))).unwrap();
    wait_until("awaiting approval", || {
        rig.events()
            .iter()
            .any(|e| matches!(e, RecoveryEvent::AwaitingApproval { .. }))
    })
    .await;
    assert!(!healed.exists());
    let id = rig.intents().recent(1).unwrap()[0].id;
    let reply = r
        .call(
            |reply| RecoveryMsg::Approve { id, reply },
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(reply.is_ok(), "{reply:?}");
    wait_until("verified", || rig.outcomes().iter().any(|o| o.1)).await;
    // A second approval is refused.
    let again = r
        .call(
            |reply| RecoveryMsg::Approve { id, reply },
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_err());
    r.stop(None);
}

/// The actor is killed while the action runs; a new actor on the same
/// store neither loses the action (it is verified and the plan finishes)
/// nor repeats it (the command ran once).
#[tokio::test]
async fn restart_mid_action_neither_loses_nor_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&state::StoreConfig::at(dir.path().join("db"))).unwrap();
    let ran = dir.path().join("ran");
    let slow = sh_action(
        format!("echo run >> {}; sleep 3", ran.display()),
        Some(&ran),
    );
    let rig = Rig::new(store, config(Mode::Auto, vec![("slow", slow)]));
    let r = rig.spawn().await;
    r.cast(RecoveryMsg::Plan(plan("i1", &["slow"]))).unwrap();
    wait_until("the action started", || lines(&ran) == 1).await;
    r.kill_and_wait(None).await.unwrap();
    let unfinished = rig.intents().unfinished().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert!(matches!(unfinished[0].phase, IntentPhase::Executing { .. }));

    let r2 = rig.spawn().await;
    wait_until("the resumed intent is verified", || {
        rig.intents().recent(1).unwrap()[0].is_done()
    })
    .await;
    assert_eq!(rig.outcomes(), vec![("slow".into(), true, true)]);
    // Give a repeated run every chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines(&ran), 1, "the action ran again after the restart");
    let d = rig.decisions();
    assert!(d.contains(&"interrupted".to_string()), "{d:?}");
    assert_eq!(d.iter().filter(|d| *d == "executing").count(), 1);
    r2.stop(None);
}

/// Plans keep coming for a target whose fix never holds: at most the
/// budgeted attempts run, then the breaker opens and one page goes out.
#[tokio::test]
async fn flapping_target_is_bounded_by_budget_and_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let never = dir.path().join("never");
    let a = sh_action(format!("echo run >> {}", ran.display()), Some(&never));
    let mut cfg = config(Mode::Auto, vec![("restart", a)]);
    cfg.actions
        .get_mut("restart")
        .unwrap()
        .verify
        .as_mut()
        .unwrap()
        .within = Span::millis(50);
    let rig = Rig::new(Store::temporary().unwrap(), cfg);
    let r = rig.spawn().await;
    for n in 0..12 {
        r.cast(RecoveryMsg::Plan(plan(&format!("i{n}"), &["restart"])))
            .unwrap();
        let want = n + 1;
        wait_until("the plan finished", || {
            rig.intents()
                .recent(100)
                .unwrap()
                .iter()
                .filter(|i| i.is_done())
                .count()
                == want
        })
        .await;
    }
    assert_eq!(lines(&ran), 3);
    let pages = rig
        .events()
        .iter()
        .filter(|e| matches!(e, RecoveryEvent::Paged(_)))
        .count();
    assert_eq!(pages, 1);
    r.stop(None);
}
