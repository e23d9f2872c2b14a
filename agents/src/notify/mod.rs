//! # notify: incident updates → messages to people
//!
//! - Input: [`actor::NotifyMsg`]: notices, recovery events (awaiting
//!   approval, fix applied, verified, failed, escalated, paged), and a
//!   periodic scan of incidents (opened, resolved).
//! - Output: messages on Telegram, Slack, Discord and generic webhooks,
//!   routed by severity and service, one per incident update per channel.
//! - Owned state: the `notify_deliveries` tree (delivery log; a message is
//!   claimed there before it is sent, which is what deduplicates).
//! - Crash policy: permanent; a claimed message whose result was not
//!   recorded stays `pending` and is not resent (at most once).
//!
//! Files: [`config`] (channels, routing, secrets), [`message`] (text and
//! the real APIs' request shapes), [`send`] (retries with backoff and
//! Retry-After), [`actor`].

pub mod actor;
pub mod config;
pub mod message;
pub mod send;

#[cfg(test)]
mod tests;
