//! # supervisor
