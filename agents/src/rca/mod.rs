//! The rca stage: not built yet (see the issue that adds it).
