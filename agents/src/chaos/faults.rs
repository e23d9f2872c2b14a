//! Armed faults, consumed by the stage they target.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What to do to a stage the next time it handles a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Panic inside the handler (the actor fails; its supervisor restarts it).
    Panic,
    /// Stop making progress: sleep inside the handler for this long (a
    /// stuck, not dead, stage).
    Freeze(Duration),
}

/// Faults armed per stage name, each firing a given number of times.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<HashMap<String, (Fault, u32)>>,
}

impl Faults {
    /// Arm `fault` for the next `times` messages of `stage`.
    pub fn arm(&self, stage: &str, fault: Fault, times: u32) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stage.to_string(), (fault, times));
    }

    /// Take one firing of the fault armed for `stage`, if any.
    pub fn take(&self, stage: &str) -> Option<Fault> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let (fault, left) = armed.get_mut(stage)?;
        let f = *fault;
        *left -= 1;
        if *left == 0 {
            armed.remove(stage);
        }
        Some(f)
    }

    /// Called by a stage at the start of each message: fires an armed fault.
    pub async fn fire(&self, stage: &str) {
        match self.take(stage) {
            Some(Fault::Panic) => panic!("chaos: injected panic in {stage}"),
            Some(Fault::Freeze(d)) => tokio::time::sleep(d).await,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_the_armed_number_of_times() {
        let f = Faults::default();
        f.arm("detect", Fault::Panic, 2);
        assert_eq!(f.take("triage"), None);
        assert_eq!(f.take("detect"), Some(Fault::Panic));
        assert_eq!(f.take("detect"), Some(Fault::Panic));
        assert_eq!(f.take("detect"), None);
    }
}
