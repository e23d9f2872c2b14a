//! # supervisor
pub mod tree;
