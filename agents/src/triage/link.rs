//! Glue between triage and the rca stage: correlation of each batch's
//! anomalies across linked services (see [`super::correlate`]) and the hand
//! over of committed incidents to the analyser. Optional: without it triage
//! works alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ractor::ActorRef;
use state::Store;
use state::keys::Id;
use state::model::{Anomaly, Incident};
use state::trees::IncidentFilter;

use super::correlate::{Correlator, assignments, mark_flapping, merge_new};
use super::dedup::fingerprint;
use crate::rca::messages::RcaMsg;
use crate::rca::shared::RcaShared;

/// What triage needs to correlate and to hand incidents on.
#[derive(Clone)]
pub struct RcaLink {
    pub shared: Arc<RcaShared>,
    pub analyst: ActorRef<RcaMsg>,
}

/// Per-batch correlation state.
pub struct BatchLink<'a> {
    link: &'a RcaLink,
    fp_service: HashMap<String, (String, i64)>,
    /// Fingerprint → correlated incident handed to the fold.
    pub correlated: HashMap<String, Id>,
    taken: HashSet<Id>,
}

impl RcaLink {
    /// Seed a correlator with the store's active incidents.
    pub fn correlator(&self, store: &Store) -> Correlator {
        let mut c = Correlator::default();
        for status in [
            state::model::IncidentStatus::Open,
            state::model::IncidentStatus::Acknowledged,
        ] {
            if let Ok(list) = store.incidents().list(&IncidentFilter {
                status: Some(status),
                limit: 500,
                ..Default::default()
            }) {
                for i in &list {
                    c.note(i);
                }
            }
        }
        c
    }

    pub fn batch<'a>(&'a self, anomalies: &[Anomaly]) -> BatchLink<'a> {
        BatchLink {
            link: self,
            fp_service: anomalies
                .iter()
                .map(|a| (fingerprint(a), (a.service.clone(), a.ts_ms)))
                .collect(),
            correlated: HashMap::new(),
            taken: HashSet::new(),
        }
    }
}

impl BatchLink<'_> {
    /// Wrap triage's lookup: a fingerprint with no live incident of its own
    /// joins an active incident of a linked service.
    pub fn lookup(
        &mut self,
        store: &Store,
        correlator: &Correlator,
        own: Option<Incident>,
        fp: &str,
    ) -> Option<Incident> {
        if let Some(i) = &own
            && (i.status.is_active() || i.status == state::model::IncidentStatus::Resolved)
        {
            self.taken.insert(i.id);
            return own;
        }
        let (service, ts) = self.fp_service.get(fp)?.clone();
        let topo = self.link.shared.topology();
        let id = correlator.find(
            &service,
            ts.max(state::now_ms()),
            &topo,
            &self.link.shared.settings.correlate,
            &self.taken,
        );
        drop(topo);
        // The correlator's view may be stale: an incident resolved by
        // another stage (a verified fix) is not joined.
        match id
            .and_then(|id| store.incidents().get(id).ok().flatten())
            .filter(|inc| inc.status.is_active())
        {
            Some(inc) => {
                self.taken.insert(inc.id);
                self.correlated.insert(fp.to_string(), inc.id);
                Some(inc)
            }
            None => own,
        }
    }

    /// After the fold: merge linked incidents opened in this batch, mark
    /// flapping ones. Returns the incidents to commit.
    pub fn finish(
        &mut self,
        incidents: Vec<Incident>,
        now_ms: i64,
    ) -> (Vec<Incident>, Vec<(String, Id)>) {
        let topo = self.link.shared.topology();
        let cfg = &self.link.shared.settings.correlate;
        let (mut out, moved) = merge_new(incidents, &topo, cfg, now_ms);
        for i in &mut out {
            mark_flapping(i, cfg, now_ms);
        }
        (out, moved)
    }

    /// After the commit: remember the incidents and hand them to rca.
    pub fn hand_over(
        self,
        correlator: &mut Correlator,
        incidents: &[Incident],
        moved: &[(String, Id)],
        anomalies: &[Anomaly],
    ) {
        for i in incidents {
            correlator.note(i);
        }
        let map = assignments(incidents, moved, &self.correlated);
        let signals: Vec<(Id, Anomaly)> = anomalies
            .iter()
            .filter_map(|a| map.get(&fingerprint(a)).map(|id| (*id, a.clone())))
            .collect();
        if incidents.is_empty() {
            return;
        }
        let _ = self.link.analyst.cast(RcaMsg::Triaged {
            incidents: incidents.to_vec(),
            signals,
        });
    }
}
