//! # chaos
//!
//! Fault injection into the supervisor's own stages, for resilience tests
//! (and, when `CHAOS_ENABLED=true`, for experiments). Each stage checks
//! [`Faults`] at the start of every message it handles.

pub mod faults;

pub use faults::{Fault, Faults};
