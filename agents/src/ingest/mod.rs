//! # ingest
//!
//! Input: HTTP bodies (JSON, NDJSON). Output: validated events appended to
//! the write-ahead tree, made durable before the client is answered, then
//! read back by cursor and handed to detect in batches.
//! Owned state: the write-ahead tree (appends) and its retention.
//! Crash policy: permanent; on restart it re-reads from the pipeline cursor,
//! so nothing acknowledged is lost.

pub mod actor;
pub mod commit;
pub mod messages;
pub mod parse;
pub mod raw;
pub mod retention;
