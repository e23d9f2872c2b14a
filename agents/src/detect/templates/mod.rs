//! Online log template mining (Drain-style fixed-depth tree with masking
//! and count-based generalisation). Pure: the detect actor and the Loghub
//! evaluation both drive [`Miner`].

pub mod mask;
pub mod miner;

pub use mask::{Masked, WILDCARD, mask_token};
pub use miner::{Miner, MinerConfig, Observation, Slot, Template};
