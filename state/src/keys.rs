//! Keys: big-endian, fixed-width, so that sled's byte order is the natural
//! order (time order for ids).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Encode a u64 so byte order equals numeric order.
pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Decode a key written by [`u64_key`]; `None` if it is not 8 bytes.
pub fn key_u64(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// Time-ordered id: milliseconds in the high 44 bits, a counter in the low
/// 20, so ids made later compare greater even within one millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64);

impl Id {
    pub fn millis(self) -> i64 {
        (self.0 >> 20) as i64
    }
    pub fn key(self) -> [u8; 8] {
        u64_key(self.0)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Id {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(format!("id must be 16 hex digits, got {s:?}"));
        }
        u64::from_str_radix(s, 16)
            .map(Id)
            .map_err(|_| format!("id must be 16 hex digits, got {s:?}"))
    }
}

// Ids travel as strings: JSON numbers above 2^53 lose precision in clients.
impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Makes strictly increasing, time-ordered [`Id`]s.
#[derive(Debug, Default)]
pub struct IdGen {
    last: AtomicU64,
}

impl IdGen {
    /// Start after `floor` (the largest id already stored), so ids stay
    /// unique across restarts even if the clock went back.
    pub fn starting_after(floor: u64) -> Self {
        Self {
            last: AtomicU64::new(floor),
        }
    }

    pub fn next(&self, now_ms: i64) -> Id {
        let candidate = (now_ms.max(0) as u64) << 20;
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Id(next),
                Err(p) => prev = p,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoded_order_is_numeric_order(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), u64_key(a).cmp(&u64_key(b)));
            prop_assert_eq!(key_u64(&u64_key(a)), Some(a));
        }

        #[test]
        fn ids_roundtrip_through_text(n: u64) {
            let id = Id(n);
            prop_assert_eq!(id.to_string().parse::<Id>().unwrap(), id);
        }
    }

    #[test]
    fn ids_increase_even_when_the_clock_goes_back() {
        let g = IdGen::starting_after(0);
        let a = g.next(1_000);
        let b = g.next(900);
        let c = g.next(1_000);
        assert!(a < b && b < c);
        assert_eq!(a.millis(), 1_000);
    }
}
