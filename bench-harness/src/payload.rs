//! Message bodies, generated once before a run so that producers spend
//! their CPU on I/O, not on random numbers.
//!
//! A [`Payloads`] holds a pool of bytes (random, word-like or zeros) and a
//! table of message sizes (fixed, or uniform in `[min, max]`). Message `k` of
//! a producer takes its size from the table and its body from the pool at an
//! offset that moves with `k`, so consecutive messages differ (a compressor
//! cannot just repeat the previous one) while nothing is generated per send.

use crate::cli::{PayloadKind, MESSAGE_TIMESTAMP_BYTES};

/// Bytes of the body pool beyond the largest message.
const POOL_SPREAD_BYTES: usize = 1 << 20;
/// Entries of the size table (sizes repeat with this period).
const SIZE_TABLE_ENTRIES: usize = 4096;
/// Distance between the bodies of consecutive messages in the pool; odd and
/// not a power of two, so offsets cycle through the whole pool.
const BODY_STRIDE_BYTES: usize = 4099;

/// splitmix64: tiny, fast, good enough for payloads and sizes.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub struct Payloads {
    pool: Vec<u8>,
    sizes: Vec<u32>,
}

impl Payloads {
    pub fn new(kind: PayloadKind, message_bytes_min: u32, message_bytes_max: u32, seed: u64) -> Payloads {
        assert!(message_bytes_min >= MESSAGE_TIMESTAMP_BYTES && message_bytes_min <= message_bytes_max);
        let mut random = SplitMix64::new(seed);
        let pool_bytes = message_bytes_max as usize + POOL_SPREAD_BYTES;
        let pool = match kind {
            PayloadKind::Zeros => vec![0; pool_bytes],
            PayloadKind::Random => {
                let mut pool = Vec::with_capacity(pool_bytes + 8);
                while pool.len() < pool_bytes {
                    pool.extend_from_slice(&random.next_u64().to_le_bytes());
                }
                pool.truncate(pool_bytes);
                pool
            }
            PayloadKind::Text => text_pool(pool_bytes, &mut random),
        };
        let span = u64::from(message_bytes_max - message_bytes_min) + 1;
        let sizes = (0..SIZE_TABLE_ENTRIES)
            .map(|_| message_bytes_min + (random.next_u64() % span) as u32)
            .collect();
        Payloads { pool, sizes }
    }

    /// Value size of message `index` (timestamp included).
    pub fn message_bytes(&self, index: u64) -> usize {
        self.sizes[(index % SIZE_TABLE_ENTRIES as u64) as usize] as usize
    }

    /// The body of message `index`: the bytes after its 8-byte timestamp.
    pub fn body(&self, index: u64, message_bytes: usize) -> &[u8] {
        let body_bytes = message_bytes - MESSAGE_TIMESTAMP_BYTES as usize;
        let offset = (index as usize).wrapping_mul(BODY_STRIDE_BYTES) % POOL_SPREAD_BYTES;
        &self.pool[offset..offset + body_bytes]
    }
}

fn text_pool(bytes: usize, random: &mut SplitMix64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "broker",
        "partition",
        "offset",
        "record",
        "batch",
        "latency",
        "produce",
        "fetch",
        "leader",
        "segment",
        "index",
        "request",
        "response",
        "topic",
        "consumer",
        "timestamp",
        "shard",
        "core",
        "disk",
        "INFO",
        "WARN",
        "user",
        "id",
        "session",
        "GET",
        "/api/v1/orders",
        "200",
        "ok",
        "value",
    ];
    let mut pool = Vec::with_capacity(bytes + 32);
    while pool.len() < bytes {
        let word = WORDS[(random.next_u64() % WORDS.len() as u64) as usize];
        pool.extend_from_slice(word.as_bytes());
        pool.push(b' ');
    }
    pool.truncate(bytes);
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_range_and_bodies_fit() {
        let payloads = Payloads::new(PayloadKind::Random, 8, 3000, 7);
        for index in 0..20_000u64 {
            let size = payloads.message_bytes(index);
            assert!((8..=3000).contains(&size));
            assert_eq!(payloads.body(index, size).len(), size - 8);
        }
        let fixed = Payloads::new(PayloadKind::Text, 100, 100, 7);
        assert!((0..100).all(|i| fixed.message_bytes(i) == 100));
        assert_ne!(fixed.body(0, 100), fixed.body(1, 100));
    }
}
