//! `incidents` (id → versioned incident record) and `incident_fp`
//! (fingerprint → id of the newest incident with it). Writer: triage; the
//! API applies operator transitions through [`Incidents::update`], which is
//! atomic (compare-and-swap), so neither writer loses the other's change.

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::codec::{decode_json, encode_json};
use crate::keys::{Id, key_u64, u64_key};
use crate::model::{Incident, IncidentStatus};

/// The stored form of an incident: one variant per schema version.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum IncidentRecord {
    #[serde(rename = "1")]
    V1(Incident),
}

impl IncidentRecord {
    pub fn into_current(self) -> Incident {
        match self {
            IncidentRecord::V1(i) => i,
        }
    }
}

pub(crate) fn encode_incident(i: &Incident) -> Result<Vec<u8>, StoreError> {
    encode_json(&IncidentRecord::V1(i.clone()))
}

pub(crate) fn decode_incident(b: &[u8]) -> Result<Incident, StoreError> {
    Ok(decode_json::<IncidentRecord>("incidents", b)?.into_current())
}

/// Which incidents to list.
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub service: Option<String>,
    /// Only incidents with an id below this one (paging, newest first).
    pub before: Option<Id>,
    pub limit: usize,
}

#[derive(Clone)]
pub struct Incidents {
    pub(crate) tree: sled::Tree,
    pub(crate) by_fp: sled::Tree,
}

impl Incidents {
    pub fn get(&self, id: Id) -> Result<Option<Incident>, StoreError> {
        self.tree
            .get(id.key())?
            .map(|v| decode_incident(&v))
            .transpose()
    }

    /// The newest incident that carried `fingerprint`.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Result<Option<Incident>, StoreError> {
        match self.by_fp.get(fingerprint.as_bytes())? {
            Some(id) => match key_u64(&id) {
                Some(id) => self.get(Id(id)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Newest first, filtered, at most `filter.limit` (0 = 50).
    pub fn list(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let limit = if filter.limit == 0 { 50 } else { filter.limit };
        let upper = filter.before.map(|b| b.0).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for kv in self.tree.range(..u64_key(upper)).rev() {
            let (_, v) = kv?;
            let inc = decode_incident(&v)?;
            if filter.status.is_some_and(|s| s != inc.status) {
                continue;
            }
            if let Some(svc) = &filter.service
                && !inc.services.iter().any(|s| s == svc)
            {
                continue;
            }
            out.push(inc);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Largest id stored (0 if none), to seed the id generator.
    pub fn max_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .last()?
            .and_then(|(k, _)| key_u64(&k))
            .unwrap_or(0))
    }

    /// Atomically apply `f` to the stored incident (compare-and-swap loop).
    /// `f` returning `Err` leaves the record as it was.
    pub fn update<E>(
        &self,
        id: Id,
        mut f: impl FnMut(&mut Incident) -> Result<(), E>,
    ) -> Result<Option<Result<Incident, E>>, StoreError> {
        loop {
            let Some(old) = self.tree.get(id.key())? else {
                return Ok(None);
            };
            let mut inc = decode_incident(&old)?;
            if let Err(e) = f(&mut inc) {
                return Ok(Some(Err(e)));
            }
            let new = encode_incident(&inc)?;
            match self
                .tree
                .compare_and_swap(id.key(), Some(&old), Some(new))?
            {
                Ok(()) => return Ok(Some(Ok(inc))),
                Err(_) => continue,
            }
        }
    }
}
