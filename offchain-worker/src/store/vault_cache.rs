//! A bounded, write-through read cache in front of the epoch vaults.
//!
//! Why: every vault read is ≥ 1 ORAM access per 4 KiB block (an input is ≈ 10, a result ≈ 4),
//! and a request's input and result are read again soon after they are written (evaluation,
//! release, every client poll). Serving those reads from the worker's own memory removes most
//! of a request's ORAM accesses; writes still go to the ORAM first, so durability and crash
//! recovery are unchanged.
//!
//! What the host learns: a read that hits the cache makes no storage request at all. Hits
//! depend on what was written recently and on the byte budget, not on values; the host could
//! already see every write. The cache holds what the vault returns (client ciphertexts and
//! evaluation keys, never plaintext features), in memory only, zeroised on eviction.

use std::collections::{BTreeMap, HashMap};

use smidl_oram::RecordKey;
use zeroize::Zeroizing;

/// A record of one generation of one model's vault.
pub(super) type Slot = (u32, u64, RecordKey);

pub(super) struct VaultCache {
    budget: usize,
    used: usize,
    tick: u64,
    entries: HashMap<Slot, (u64, Zeroizing<Vec<u8>>)>,
    /// Least recently used first.
    order: BTreeMap<u64, Slot>,
}

impl VaultCache {
    /// A cache holding at most `budget` bytes of values (a larger value is never cached).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, slot: &Slot) -> Option<Vec<u8>> {
        let tick = self.next_tick();
        let (t, v) = self.entries.get_mut(slot)?;
        self.order.remove(t);
        *t = tick;
        self.order.insert(tick, *slot);
        Some(v.to_vec())
    }

    /// Records `value` as the slot's current value (after the vault has stored it).
    pub fn insert(&mut self, slot: Slot, value: &[u8]) {
        self.remove(&slot);
        if value.len() > self.budget {
            return;
        }
        while self.used + value.len() > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, v)) = self.entries.remove(&oldest) {
                self.used -= v.len();
            }
        }
        let tick = self.next_tick();
        self.used += value.len();
        self.order.insert(tick, slot);
        self.entries
            .insert(slot, (tick, Zeroizing::new(value.to_vec())));
    }

    pub fn remove(&mut self, slot: &Slot) {
        if let Some((t, v)) = self.entries.remove(slot) {
            self.order.remove(&t);
            self.used -= v.len();
        }
    }

    /// Forgets every record of one generation (shredded, or its handle failed and is reopened
    /// from the journal, which may not hold the last write).
    pub fn forget_generation(&mut self, model_id: u32, generation: u64) {
        let gone: Vec<Slot> = self
            .entries
            .keys()
            .filter(|(m, g, _)| (*m, *g) == (model_id, generation))
            .copied()
            .collect();
        for s in gone {
            self.remove(&s);
        }
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.used
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(i: u8) -> Slot {
        (1, 0, [i; 32])
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut c = VaultCache::new(10);
        c.insert(slot(1), &[1; 4]);
        c.insert(slot(2), &[2; 4]);
        assert_eq!(c.get(&slot(1)), Some(vec![1; 4])); // 2 is now the oldest
        c.insert(slot(3), &[3; 4]);
        assert_eq!(c.get(&slot(2)), None);
        assert_eq!(c.get(&slot(1)), Some(vec![1; 4]));
        assert_eq!(c.get(&slot(3)), Some(vec![3; 4]));
        assert_eq!(c.bytes(), 8);
        c.insert(slot(4), &[4; 11]);
        assert_eq!(
            c.get(&slot(4)),
            None,
            "a value above the budget is not cached"
        );
    }

    #[test]
    fn replace_remove_and_forget() {
        let mut c = VaultCache::new(100);
        c.insert(slot(1), &[1; 4]);
        c.insert(slot(1), &[9; 6]);
        assert_eq!(c.get(&slot(1)), Some(vec![9; 6]));
        assert_eq!(c.bytes(), 6);
        c.remove(&slot(1));
        assert_eq!(c.get(&slot(1)), None);
        c.insert(slot(2), &[2; 4]);
        c.insert((1, 1, [2; 32]), &[5; 4]);
        c.insert((2, 0, [2; 32]), &[6; 4]);
        c.forget_generation(1, 0);
        assert_eq!(c.get(&slot(2)), None);
        assert_eq!(c.get(&(1, 1, [2; 32])), Some(vec![5; 4]));
        assert_eq!(c.get(&(2, 0, [2; 32])), Some(vec![6; 4]));
        assert_eq!(c.bytes(), 8);
    }
}
