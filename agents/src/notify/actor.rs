//! `Notifier`: turns incident updates into messages, one per update per
//! channel, and hands them to one worker task per channel (rate limit,
//! retries, delivery log), so the handler never waits on the network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::keys::Id;
use state::model::{Incident, IncidentStatus, Severity};
use state::trees::{Deliveries, Delivery, IncidentFilter};
use state::{Store, now_ms};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::{ChannelConfig, NotifyConfig, RetryConfig};
use super::message::{Notice, request};
use super::send::deliver;
use crate::recovery::messages::RecoveryEvent;

#[derive(Debug)]
pub enum NotifyMsg {
    /// Send this update (deduplicated by its key).
    Notice(Notice),
    /// An event of the recovery stage.
    Recovery(RecoveryEvent),
    /// Look for opened and resolved incidents.
    Scan,
}

pub struct Notifier;

pub struct NotifierArgs {
    pub store: Store,
    pub config: Arc<NotifyConfig>,
    pub client: reqwest::Client,
    /// How often incidents are scanned for openings and resolutions.
    pub scan_every: Duration,
}

struct Job {
    delivery: Delivery,
    url: String,
    body: serde_json::Value,
}

pub struct NotifierState {
    args: NotifierArgs,
    deliveries: Deliveries,
    workers: Vec<(ChannelConfig, mpsc::Sender<Job>)>,
    tasks: Vec<JoinHandle<()>>,
    /// Incidents updated before this are not announced (no flood at start).
    since_ms: i64,
}

/// Messages queued per channel at most; more are recorded as failed.
const QUEUE: usize = 1024;

impl Actor for Notifier {
    type Msg = NotifyMsg;
    type State = NotifierState;
    type Arguments = NotifierArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NotifyMsg>,
        args: NotifierArgs,
    ) -> Result<NotifierState, ActorProcessingErr> {
        let deliveries = Deliveries::open(args.store.open_tree("notify_deliveries")?);
        let mut workers = Vec::new();
        let mut tasks = Vec::new();
        for ch in &args.config.channels {
            let (tx, rx) = mpsc::channel(QUEUE);
            tasks.push(tokio::spawn(worker(
                rx,
                ch.per_minute,
                args.client.clone(),
                args.config.retry.clone(),
                deliveries.clone(),
            )));
            workers.push((ch.clone(), tx));
        }
        myself.send_interval(args.scan_every, || NotifyMsg::Scan);
        Ok(NotifierState {
            since_ms: now_ms() - 60_000,
            args,
            deliveries,
            workers,
            tasks,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NotifyMsg>,
        state: &mut NotifierState,
    ) -> Result<(), ActorProcessingErr> {
        for t in &state.tasks {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<NotifyMsg>,
        msg: NotifyMsg,
        state: &mut NotifierState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NotifyMsg::Notice(n) => state.dispatch(&n)?,
            NotifyMsg::Recovery(e) => {
                if let Some(n) = state.notice_of_recovery(e) {
                    state.dispatch(&n)?;
                }
            }
            NotifyMsg::Scan => state.scan()?,
        }
        Ok(())
    }
}

impl NotifierState {
    fn dispatch(&self, n: &Notice) -> Result<(), ActorProcessingErr> {
        for (ch, tx) in &self.workers {
            if !ch.routes(n.severity, &n.service) {
                continue;
            }
            let delivery = Delivery {
                channel: ch.name.clone(),
                key: n.key.clone(),
                incident_id: n.incident_id.clone(),
                update: n.update.clone(),
                status: "pending".into(),
                attempts: 0,
                last_error: String::new(),
                ts_ms: now_ms(),
            };
            if !self.deliveries.claim(&delivery)? {
                continue; // this update was already sent (or is being sent)
            }
            let (url, body) = request(&ch.kind, n);
            if let Err(e) = tx.try_send(Job {
                delivery,
                url,
                body,
            }) {
                let mut d = match e {
                    mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => {
                        j.delivery
                    }
                };
                d.status = "failed".into();
                d.last_error = "channel queue full".into();
                self.deliveries.record(&d)?;
            }
        }
        Ok(())
    }

    fn link(&self, incident_id: &str) -> String {
        format!(
            "{}/incidents/{incident_id}",
            self.args.config.public_url.trim_end_matches('/')
        )
    }

    fn incident(&self, id: &str) -> Option<Incident> {
        let id: Id = id.parse().ok()?;
        self.args.store.incidents().get(id).ok().flatten()
    }

    fn notice(
        &self,
        inc: Option<&Incident>,
        incident_id: &str,
        update: &str,
        key: String,
    ) -> Notice {
        Notice {
            incident_id: incident_id.to_string(),
            update: update.into(),
            key,
            service: inc.map(|i| i.service.clone()).unwrap_or_default(),
            severity: inc.map(|i| i.severity).unwrap_or(Severity::High),
            title: inc.map(|i| i.title.clone()).unwrap_or_default(),
            root_cause: None,
            fix: None,
            detail: String::new(),
            link: self.link(incident_id),
        }
    }

    fn notice_of_recovery(&self, e: RecoveryEvent) -> Option<Notice> {
        Some(match e {
            RecoveryEvent::AwaitingApproval {
                action_id,
                incident_id,
                fix,
                target,
                expires_ms,
            } => {
                let inc = self.incident(&incident_id);
                let mut n = self.notice(
                    inc.as_ref(),
                    &incident_id,
                    "awaiting_approval",
                    format!("{incident_id}/awaiting_approval/{action_id}/{fix}"),
                );
                n.detail = format!(
                    "fix {fix} on {target} waits for POST /actions/{action_id}/approve (expires at {expires_ms})"
                );
                n.fix = Some(fix);
                n
            }
            RecoveryEvent::Applied {
                action_id,
                incident_id,
                fix,
                target,
                detail,
            } => {
                let inc = self.incident(&incident_id);
                let mut n = self.notice(
                    inc.as_ref(),
                    &incident_id,
                    "fix_applied",
                    format!("{incident_id}/fix_applied/{action_id}/{fix}"),
                );
                n.detail = format!("{fix} on {target}: {detail}");
                n.fix = Some(fix);
                n
            }
            RecoveryEvent::Outcome(o) => {
                let inc = self.incident(&o.incident_id);
                let update = if o.success && o.verified {
                    "verified"
                } else if o.success {
                    "fix_applied_unverified"
                } else {
                    "fix_failed"
                };
                let mut n = self.notice(
                    inc.as_ref(),
                    &o.incident_id,
                    update,
                    format!("{}/{update}/{}/{}", o.incident_id, o.fix, o.ts_ms),
                );
                n.detail = o.detail;
                n.root_cause = o.cause_id;
                n.fix = Some(o.fix);
                n
            }
            RecoveryEvent::Escalated {
                action_id,
                incident_id,
                reason,
            } => {
                let inc = self.incident(&incident_id);
                let mut n = self.notice(
                    inc.as_ref(),
                    &incident_id,
                    "escalated",
                    format!("{incident_id}/escalated/{action_id}"),
                );
                n.detail = format!("a human is needed: {reason}");
                n
            }
            RecoveryEvent::Paged(p) => {
                let mut n = self.notice(None, "", "paged", format!("paged/{}", now_ms()));
                n.severity = Severity::Critical;
                n.title = "automation needs a human".into();
                n.detail = serde_json::to_string(&p).unwrap_or_default();
                n.link = format!(
                    "{}/actions",
                    self.args.config.public_url.trim_end_matches('/')
                );
                n
            }
        })
    }

    /// Opened and resolved incidents since the actor started.
    fn scan(&self) -> Result<(), ActorProcessingErr> {
        if self.workers.is_empty() {
            return Ok(());
        }
        let recent = self.args.store.incidents().list(&IncidentFilter {
            limit: 200,
            ..Default::default()
        })?;
        for inc in recent.iter().filter(|i| i.updated_ms >= self.since_ms) {
            let id = inc.id.to_string();
            let mut n = self.notice(
                Some(inc),
                &id,
                "opened",
                format!("{id}/opened/{}", inc.first_seen_ms),
            );
            n.detail = format!("{} event(s); {}", inc.count, inc.reasons.join("; "));
            self.dispatch(&n)?;
            if inc.status == IncidentStatus::Resolved
                && let Some(t) = inc.timeline.iter().rev().find(|t| t.kind == "resolved")
            {
                let mut n = self.notice(
                    Some(inc),
                    &id,
                    "resolved",
                    format!("{id}/resolved/{}", t.ts_ms),
                );
                n.detail = t.detail.clone();
                self.dispatch(&n)?;
            }
        }
        Ok(())
    }
}

/// One channel: at most `per_minute` sends per minute, each retried, each
/// result written to the delivery log.
async fn worker(
    mut rx: mpsc::Receiver<Job>,
    per_minute: u32,
    client: reqwest::Client,
    retry: RetryConfig,
    deliveries: Deliveries,
) {
    let gap = Duration::from_millis(60_000 / u64::from(per_minute.max(1)));
    let mut last: Option<Instant> = None;
    while let Some(job) = rx.recv().await {
        if let Some(l) = last {
            let next = l + gap;
            if next > Instant::now() {
                tokio::time::sleep_until(next.into()).await;
            }
        }
        last = Some(Instant::now());
        let sent = deliver(&client, &job.url, &job.body, &retry).await;
        let mut d = job.delivery;
        d.status = if sent.ok { "delivered" } else { "failed" }.into();
        d.attempts = sent.attempts;
        d.last_error = sent.error;
        d.ts_ms = now_ms();
        if !sent.ok {
            tracing::warn!(channel = %d.channel, incident.id = %d.incident_id, error = %d.last_error, "notify.failed");
        }
        if let Err(e) = deliveries.record(&d) {
            tracing::error!(error = %e, "notify: cannot record a delivery");
        }
    }
}
