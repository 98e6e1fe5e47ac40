//! Parameters and tree geometry: heap-ordered buckets (root 0, children 2i+1 and 2i+2), 2^L
//! leaves for N ≤ 2^L blocks, Z = 5 blocks per bucket, and the stash bound.

use crate::error::OramError;

/// Blocks per bucket. Z = 5 is the smallest bucket size for which Path ORAM's stash bound is
/// proven (Stefanov et al., "Path ORAM", CCS 2013 / JACM 2018, Theorem 1):
/// Pr[stash > R] ≤ 14 · 0.6002^R after any access sequence.
pub const Z: usize = 5;

/// The overflow target per epoch: 2^-40.
pub const OVERFLOW_LOG2: f64 = 40.0;

/// Largest capacity: leaves are stored as u32 in the position map.
pub const MAX_CAPACITY_LOG2: u32 = 32;

/// Bytes of a slot's address field; `EMPTY_SLOT` marks a dummy.
pub const ADDR_BYTES: usize = 8;
pub const EMPTY_SLOT: u64 = u64::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// N: logical blocks, addresses 0..N.
    pub capacity: u64,
    /// B: bytes per block.
    pub block_bytes: usize,
    /// K: accesses one epoch may make; sizes the stash so that it overflows with probability
    /// ≤ 2^-40 over the whole epoch (union bound over K accesses).
    pub max_accesses: u64,
    /// Memory for the top of the tree, kept in the client (tree-top caching, as in ZeroTrace
    /// and Phantom): the storage host sees only the levels below. 0 keeps every level remote.
    pub treetop_bytes: usize,
    /// Commits between checkpoints (the journal is replayed from the last checkpoint).
    pub checkpoint_every: u32,
}

impl Params {
    pub fn new(capacity: u64, block_bytes: usize, max_accesses: u64) -> Self {
        Self {
            capacity,
            block_bytes,
            max_accesses,
            treetop_bytes: 8 << 20,
            checkpoint_every: 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// L: leaves are 0..2^L; a path has L + 1 buckets.
    pub height: u32,
    /// Levels 0..cached_levels live in client memory.
    pub cached_levels: u32,
    /// R: the stash's bound after eviction (and the padded size it is journaled at).
    pub stash_bound: usize,
    pub block_bytes: usize,
    pub capacity: u64,
    pub max_accesses: u64,
}

impl Geometry {
    pub fn new(p: &Params) -> Result<Self, OramError> {
        if p.capacity == 0 || p.capacity > (1u64 << MAX_CAPACITY_LOG2) {
            return Err(OramError::Config(format!(
                "capacity {} must be in 1..=2^{MAX_CAPACITY_LOG2}",
                p.capacity
            )));
        }
        if p.block_bytes == 0 || p.block_bytes > (1 << 20) {
            return Err(OramError::Config(format!(
                "block size {} must be in 1..=1 MiB",
                p.block_bytes
            )));
        }
        if p.max_accesses == 0 {
            return Err(OramError::Config("max_accesses must be > 0".into()));
        }
        if p.checkpoint_every == 0 {
            return Err(OramError::Config("checkpoint_every must be > 0".into()));
        }
        let height = (64 - (p.capacity - 1).leading_zeros()).max(1);
        let bucket = bucket_plain_bytes(p.block_bytes);
        let mut cached_levels = 0u32;
        while cached_levels < height
            && ((1usize << (cached_levels + 1)) - 1).saturating_mul(bucket) <= p.treetop_bytes
        {
            cached_levels += 1;
        }
        Ok(Self {
            height,
            cached_levels,
            stash_bound: stash_bound(p.max_accesses),
            block_bytes: p.block_bytes,
            capacity: p.capacity,
            max_accesses: p.max_accesses,
        })
    }

    pub fn levels(&self) -> u32 {
        self.height + 1
    }

    pub fn leaves(&self) -> u64 {
        1u64 << self.height
    }

    pub fn nodes(&self) -> u64 {
        (1u64 << (self.height + 1)) - 1
    }

    /// The bucket at `level` on the path to `leaf`.
    pub fn node(&self, leaf: u64, level: u32) -> u64 {
        ((1u64 << level) - 1) + (leaf >> (self.height - level))
    }

    pub fn level_of(node: u64) -> u32 {
        63 - (node + 1).leading_zeros()
    }

    /// Whether a block mapped to `leaf` may sit in the bucket at `level` on the path to
    /// `path_leaf` (the paths share that bucket).
    pub fn shares(&self, leaf: u64, path_leaf: u64, level: u32) -> bool {
        leaf >> (self.height - level) == path_leaf >> (self.height - level)
    }

    pub fn is_cached(&self, node: u64) -> bool {
        Self::level_of(node) < self.cached_levels
    }

    pub fn cached_nodes(&self) -> u64 {
        (1u64 << self.cached_levels) - 1
    }

    pub fn slot_bytes(&self) -> usize {
        ADDR_BYTES + self.block_bytes
    }
}

pub fn bucket_plain_bytes(block_bytes: usize) -> usize {
    Z * (ADDR_BYTES + block_bytes)
}

/// R = ⌈(40 + log2(14·K)) / log2(1/0.6002)⌉: with Pr[stash > R] ≤ 14·0.6002^R after each
/// access, a union bound over K accesses gives ≤ 2^-40 per epoch.
pub fn stash_bound(max_accesses: u64) -> usize {
    let k = max_accesses.max(1) as f64;
    let r = (OVERFLOW_LOG2 + (14.0 * k).log2()) / (1.0 / 0.6002f64).log2();
    r.ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_levels() {
        let g = Geometry::new(&Params::new(16, 8, 100)).unwrap();
        assert_eq!(g.height, 4);
        assert_eq!(g.nodes(), 31);
        assert_eq!(g.node(0, 0), 0);
        assert_eq!(g.node(15, 4), 30);
        assert_eq!(g.node(5, 1), 1);
        for leaf in 0..16 {
            for level in 0..=4 {
                let n = g.node(leaf, level);
                assert_eq!(Geometry::level_of(n), level);
                if level > 0 {
                    assert_eq!((n - 1) / 2, g.node(leaf, level - 1), "parent link");
                }
            }
        }
        assert!(g.shares(4, 5, 3) && !g.shares(4, 6, 3) && g.shares(4, 6, 2));
    }

    #[test]
    fn stash_bound_meets_the_target() {
        for k in [1u64, 1 << 10, 1 << 20, 1 << 30] {
            let r = stash_bound(k);
            let log2_p = (14.0 * k as f64).log2() + r as f64 * 0.6002f64.log2();
            assert!(log2_p <= -40.0, "K={k} R={r}: 2^{log2_p}");
            let smaller = (14.0 * k as f64).log2() + (r - 1) as f64 * 0.6002f64.log2();
            assert!(smaller > -40.0, "R={r} is not the smallest");
        }
    }

    #[test]
    fn treetop_budget() {
        let mut p = Params::new(1 << 16, 64, 1 << 20);
        p.treetop_bytes = 0;
        assert_eq!(Geometry::new(&p).unwrap().cached_levels, 0);
        p.treetop_bytes = 3 * bucket_plain_bytes(64);
        assert_eq!(Geometry::new(&p).unwrap().cached_levels, 2);
        p.treetop_bytes = usize::MAX;
        assert_eq!(
            Geometry::new(&p).unwrap().cached_levels,
            16,
            "the leaves stay remote"
        );
    }
}
