//! The ORAM handle: Path ORAM (Stefanov et al. 2013) with tree-top caching, over sealed,
//! Merkle-linked buckets on untrusted storage.
//!
//! One access, top to bottom: look up the block's leaf and draw a fresh one → fetch the remote
//! part of that leaf's path → check every object against the hash its parent records (the root's
//! is held by the client) → move the path's blocks into the stash → read or update the block →
//! evict greedily from the leaf up → re-seal the path bottom-up, each parent recording its
//! children's new hashes → journal, anchor, write back (see [`crate::journal`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use zeroize::Zeroize;

use crate::bucket::{object_hash, Bucket, EpochId};
use crate::crypto::{fill_random, random_leaf, sha256, EpochKey, Hash, EMPTY_HASH};
use crate::error::OramError;
use crate::journal::{genesis, Checkpoint, Record};
use crate::local::{Anchor, LocalState, Shape};
use crate::storage::{Backend, Storage, Trace};
use crate::tree::{Geometry, Params, Z};

/// How to open one epoch's ORAM.
#[derive(Clone, Debug)]
pub struct Config {
    pub params: Params,
    pub backend: Backend,
    /// Names the epoch's objects (`{name}/…` on the storage) and its local files
    /// (`{name}.key`, `{name}.anchor` in `state_dir`).
    pub name: String,
    /// Trusted local directory for the key and anchor files; never on the storage it protects.
    pub state_dir: PathBuf,
    /// fsync the anchor on every commit (durability across power loss; SIGKILL needs none).
    pub sync: bool,
    /// Record every storage request (tests and audits of the access pattern).
    pub trace: Option<Trace>,
}

impl Config {
    pub fn new(
        params: Params,
        backend: Backend,
        name: &str,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            params,
            backend,
            name: name.to_string(),
            state_dir: state_dir.into(),
            sync: false,
            trace: None,
        }
    }
}

pub struct Oram {
    pub(crate) geo: Geometry,
    pub(crate) params: Params,
    pub(crate) epoch: EpochId,
    pub(crate) key: EpochKey,
    pub(crate) storage: Storage,
    pub(crate) local: LocalState,
    /// Leaf of every block.
    pub(crate) posmap: Vec<u32>,
    pub(crate) stash: BTreeMap<u64, Vec<u8>>,
    /// The cached levels, heap-indexed. Only the lowest cached level's child hashes are
    /// meaningful (they name remote objects); the rest are computed when the tree is sealed.
    pub(crate) top: Vec<Bucket>,
    /// The root object's hash when no level is cached.
    pub(crate) root_hash: Hash,
    pub(crate) seq: u64,
    pub(crate) chain: Hash,
    pub(crate) since_checkpoint: u32,
    pub(crate) poisoned: bool,
    pub(crate) finalized: Option<Hash>,
}

/// The side (0 left, 1 right) of the node at `level` on the path to `leaf`, under its parent.
fn side(g: &Geometry, leaf: u64, level: u32) -> usize {
    ((leaf >> (g.height - level)) & 1) as usize
}

pub(crate) fn random_posmap(g: &Geometry) -> Result<Vec<u32>, OramError> {
    let mut bytes = vec![0u8; 4 * g.capacity as usize];
    fill_random(&mut bytes)?;
    let mask = if g.height >= 32 {
        u32::MAX
    } else {
        (1u32 << g.height) - 1
    };
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) & mask)
        .collect())
}

impl Oram {
    /// Starts a new epoch: fresh key, identity, position map and an empty tree.
    pub async fn create(cfg: Config) -> Result<Self, OramError> {
        let (geo, mut local, storage) = Self::prepare(&cfg)?;
        if local.exists() {
            return Err(OramError::Config(format!(
                "epoch {:?} already exists in {}",
                cfg.name,
                cfg.state_dir.display()
            )));
        }
        for kind in ["b", "j", "c"] {
            if storage.list_seqs(kind).await?.is_empty() {
                continue;
            }
            return Err(OramError::Config(format!(
                "the storage already holds objects under {:?}: another epoch's data",
                cfg.name
            )));
        }
        let mut id = [0u8; 16];
        fill_random(&mut id)?;
        let key = EpochKey::generate()?;
        local.create_key(&id, &key, Self::shape(&geo))?;
        let chain = genesis(&id);
        local.write_anchor(
            &id,
            Anchor {
                seq: 0,
                hash: chain,
            },
        )?;
        Ok(Self {
            posmap: random_posmap(&geo)?,
            stash: BTreeMap::new(),
            top: vec![Bucket::default(); geo.cached_nodes() as usize],
            root_hash: EMPTY_HASH,
            seq: 0,
            chain,
            since_checkpoint: 0,
            poisoned: false,
            finalized: None,
            geo,
            params: cfg.params,
            epoch: id,
            key,
            storage,
            local,
        })
    }

    /// Reopens an epoch after a restart or crash: loads the last checkpoint, replays the
    /// journal up to the anchor and finishes the last acknowledged write-back.
    pub async fn open(cfg: Config) -> Result<Self, OramError> {
        let (geo, local, storage) = Self::prepare(&cfg)?;
        let (epoch, key, shape) = local.read_key()?;
        if shape != Self::shape(&geo) {
            return Err(OramError::Config(format!(
                "epoch {:?} was created with {shape:?}, not {:?}",
                cfg.name,
                Self::shape(&geo)
            )));
        }
        let mut o = Self {
            posmap: Vec::new(),
            stash: BTreeMap::new(),
            top: Vec::new(),
            root_hash: EMPTY_HASH,
            seq: 0,
            chain: genesis(&epoch),
            since_checkpoint: 0,
            poisoned: false,
            finalized: None,
            geo,
            params: cfg.params,
            epoch,
            key,
            storage,
            local,
        };
        o.recover().await?;
        Ok(o)
    }

    pub async fn open_or_create(cfg: Config) -> Result<Self, OramError> {
        if LocalState::new(&cfg.state_dir, &cfg.name, cfg.sync)?.exists() {
            Self::open(cfg).await
        } else {
            Self::create(cfg).await
        }
    }

    fn shape(g: &Geometry) -> Shape {
        Shape {
            capacity: g.capacity,
            block_bytes: g.block_bytes as u64,
            max_accesses: g.max_accesses,
            cached_levels: u64::from(g.cached_levels),
        }
    }

    fn prepare(cfg: &Config) -> Result<(Geometry, LocalState, Storage), OramError> {
        let geo = Geometry::new(&cfg.params)?;
        let local = LocalState::new(&cfg.state_dir, &cfg.name, cfg.sync)?;
        if let Backend::Fs { root } = &cfg.backend {
            std::fs::create_dir_all(root)?;
            std::fs::create_dir_all(&cfg.state_dir)?;
            let root = root.canonicalize()?;
            let state = cfg.state_dir.canonicalize()?;
            if state.starts_with(&root) || root.starts_with(&state) {
                return Err(OramError::Config(format!(
                    "the key directory {} and the storage {} must be apart: a copy of the \
                     storage must not carry its key",
                    state.display(),
                    root.display()
                )));
            }
        }
        let mut storage = cfg.backend.open(
            &cfg.name,
            u64::from(cfg.params.checkpoint_every),
            crate::bucket::object_bytes(cfg.params.block_bytes),
            cfg.sync,
        )?;
        if let Some(t) = &cfg.trace {
            storage = storage.with_trace(t.clone());
        }
        Ok((geo, local, storage))
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Commits so far (one per access).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn stash_len(&self) -> usize {
        self.stash.len()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The epoch's public identity (bound into every object's AAD).
    pub fn epoch_id(&self) -> EpochId {
        self.epoch
    }

    /// Opens an object with the AEAD alone, skipping the Merkle check — what a store with
    /// authenticated encryption but no freshness would accept. Tests use it to show that a
    /// replayed object is authentic and only the hash chain rejects it.
    #[doc(hidden)]
    pub fn open_unverified(&self, node: u64, obj: &[u8]) -> Result<Bucket, OramError> {
        Bucket::open(obj, &self.key, &self.epoch, node, &self.geo).map(|(b, _)| b)
    }

    /// Reads a block (zeros if never written).
    pub async fn read(&mut self, addr: u64) -> Result<Vec<u8>, OramError> {
        self.access(addr, None).await
    }

    /// Writes a block; durable when this returns.
    pub async fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), OramError> {
        if data.len() != self.geo.block_bytes {
            return Err(OramError::BlockLength {
                expected: self.geo.block_bytes,
                got: data.len(),
            });
        }
        self.access(addr, Some(data)).await.map(|_| ())
    }

    async fn access(&mut self, addr: u64, new: Option<&[u8]>) -> Result<Vec<u8>, OramError> {
        if self.poisoned {
            return Err(OramError::Poisoned);
        }
        if self.finalized.is_some() {
            return Err(OramError::Config(
                "the epoch is sealed for shredding".into(),
            ));
        }
        if addr >= self.geo.capacity {
            return Err(OramError::AddressOutOfRange {
                address: addr,
                capacity: self.geo.capacity,
            });
        }
        if self.seq >= self.geo.max_accesses {
            return Err(OramError::EpochExhausted {
                max: self.geo.max_accesses,
            });
        }
        // Any failure past this point may leave memory ahead of storage: poison, and let a
        // reopen recover from the journal.
        let r = self.access_inner(addr, new).await;
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    async fn access_inner(&mut self, addr: u64, new: Option<&[u8]>) -> Result<Vec<u8>, OramError> {
        let g = self.geo.clone();
        let leaf = u64::from(self.posmap[addr as usize]);
        let new_leaf = random_leaf(g.height)?;
        let remote = self.fetch_path(leaf).await?;

        for level in 0..g.cached_levels {
            let node = g.node(leaf, level) as usize;
            for (a, d) in std::mem::take(&mut self.top[node].blocks) {
                self.stash.insert(a, d);
            }
        }
        let mut off_path = Vec::with_capacity(remote.len());
        for b in remote {
            for (a, d) in b.blocks {
                self.stash.insert(a, d);
            }
            off_path.push(b.children);
        }

        let out = self
            .stash
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| vec![0u8; g.block_bytes]);
        if let Some(d) = new {
            self.stash.insert(addr, d.to_vec());
        }
        self.posmap[addr as usize] = new_leaf as u32;

        let placed = self.evict(leaf);
        if self.stash.len() > g.stash_bound {
            return Err(OramError::StashOverflow {
                size: self.stash.len(),
                bound: g.stash_bound,
            });
        }

        // Re-seal bottom-up: each parent records its path child's new hash.
        let version = self.seq + 1;
        let mut objects = vec![Vec::new(); (g.levels() - g.cached_levels) as usize];
        let mut below = EMPTY_HASH;
        for level in (g.cached_levels..g.levels()).rev() {
            let i = (level - g.cached_levels) as usize;
            let mut children = off_path[i];
            if level < g.height {
                children[side(&g, leaf, level + 1)] = below;
            }
            let b = Bucket {
                blocks: placed[level as usize].clone(),
                children,
            };
            let obj = b.seal(&self.key, &self.epoch, g.node(leaf, level), version, &g)?;
            below = object_hash(&obj);
            objects[i] = obj;
        }
        if g.cached_levels == 0 {
            self.root_hash = below;
        }
        let mut top_path = Vec::with_capacity(g.cached_levels as usize);
        for level in 0..g.cached_levels {
            let node = g.node(leaf, level) as usize;
            self.top[node].blocks = placed[level as usize].clone();
            if level + 1 == g.cached_levels {
                self.top[node].children[side(&g, leaf, level + 1)] = below;
            }
            top_path.push(self.top[node].clone());
        }

        let record = Record {
            seq: version,
            prev: self.chain,
            addr,
            new_leaf,
            path_leaf: leaf,
            root_hash: self.root_hash,
            stash: self.stash.iter().map(|(a, d)| (*a, d.clone())).collect(),
            top_path,
            remote: objects,
        };
        self.commit(record).await?;
        Ok(out)
    }

    /// Fetches the remote part of the path to `leaf` and checks it against the hash chain.
    async fn fetch_path(&self, leaf: u64) -> Result<Vec<Bucket>, OramError> {
        let g = &self.geo;
        let nodes: Vec<u64> = (g.cached_levels..g.levels())
            .map(|l| g.node(leaf, l))
            .collect();
        let objs = self.storage.get_buckets(&nodes).await?;
        let mut expected = if g.cached_levels == 0 {
            self.root_hash
        } else {
            let parent = g.node(leaf, g.cached_levels - 1) as usize;
            self.top[parent].children[side(g, leaf, g.cached_levels)]
        };
        let mut out = Vec::with_capacity(nodes.len());
        for ((level, node), obj) in (g.cached_levels..).zip(nodes).zip(objs) {
            let name = format!("bucket {node}");
            let b = match (expected == EMPTY_HASH, obj) {
                (true, None) => Bucket::default(),
                (true, Some(_)) => {
                    return Err(OramError::integrity(
                        name,
                        "an object exists where none was written",
                    ))
                }
                (false, None) => return Err(OramError::integrity(name, "missing")),
                (false, Some(obj)) => {
                    if object_hash(&obj) != expected {
                        return Err(OramError::integrity(
                            name,
                            "does not match the hash its parent records (modified, swapped or \
                             replayed)",
                        ));
                    }
                    Bucket::open(&obj, &self.key, &self.epoch, node, g)?.0
                }
            };
            if level < g.height {
                expected = b.children[side(g, leaf, level + 1)];
            }
            out.push(b);
        }
        Ok(out)
    }

    /// Greedy eviction onto the path to `leaf`, deepest first: each block goes as deep as its
    /// own leaf shares the path. Returns the blocks per level; the rest stays in the stash.
    fn evict(&mut self, leaf: u64) -> Vec<Vec<(u64, Vec<u8>)>> {
        let g = &self.geo;
        let mut by_level: Vec<Vec<u64>> = vec![Vec::new(); g.levels() as usize];
        for &a in self.stash.keys() {
            let diff = u64::from(self.posmap[a as usize]) ^ leaf;
            let deepest = g.height - (64 - diff.leading_zeros());
            by_level[deepest as usize].push(a);
        }
        let mut placed = vec![Vec::new(); g.levels() as usize];
        let mut pool = Vec::new();
        for level in (0..g.levels() as usize).rev() {
            pool.append(&mut by_level[level]);
            while placed[level].len() < Z {
                let Some(a) = pool.pop() else { break };
                let d = self.stash.remove(&a).expect("a stash key");
                placed[level].push((a, d));
            }
        }
        placed
    }

    /// Journal → anchor → home buckets; then maybe a checkpoint.
    async fn commit(&mut self, record: Record) -> Result<(), OramError> {
        let seq = record.seq;
        let sealed = record.seal(&self.key, &self.epoch, &self.geo)?;
        let hash = sha256(&[&sealed]);
        self.storage.put_journal(seq, sealed).await?;
        self.local.write_anchor(&self.epoch, Anchor { seq, hash })?;
        // Acknowledged from here: recovery replays this record if the write-back is cut short.
        self.write_back(&record).await?;
        self.seq = seq;
        self.chain = hash;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.params.checkpoint_every {
            self.checkpoint().await?;
        }
        Ok(())
    }

    async fn write_back(&self, record: &Record) -> Result<(), OramError> {
        let g = &self.geo;
        self.storage
            .put_buckets(
                (g.cached_levels..g.levels())
                    .zip(&record.remote)
                    .map(|(level, obj)| (g.node(record.path_leaf, level), obj.clone()))
                    .collect(),
            )
            .await
    }

    /// Writes the whole client state as `c/{seq}` and drops the journal it replaces.
    pub async fn checkpoint(&mut self) -> Result<(), OramError> {
        let c = Checkpoint {
            seq: self.seq,
            chain: self.chain,
            root_hash: self.root_hash,
            posmap: self.posmap.clone(),
            stash: self.stash.iter().map(|(a, d)| (*a, d.clone())).collect(),
            top: self.top.clone(),
        };
        let sealed = c.seal(&self.key, &self.epoch, &self.geo)?;
        self.storage.put_checkpoint(self.seq, sealed).await?;
        for s in self.storage.list_seqs("c").await? {
            if s < self.seq {
                self.storage
                    .delete(&self.storage.checkpoint_path(s))
                    .await?;
            }
        }
        // The journal slots this checkpoint covers are reused, not deleted: the ring holds
        // `checkpoint_every` records, exactly the ones written since the last checkpoint.
        self.since_checkpoint = 0;
        Ok(())
    }

    async fn recover(&mut self) -> Result<(), OramError> {
        let g = self.geo.clone();
        let anchor = self.local.read_anchor(&self.epoch)?.unwrap_or(Anchor {
            seq: 0,
            hash: genesis(&self.epoch),
        });
        let rolled_back = |reason| OramError::integrity("journal", reason);

        let ckpt_seq = self
            .storage
            .list_seqs("c")
            .await?
            .into_iter()
            .filter(|&s| s <= anchor.seq)
            .max();
        match ckpt_seq {
            Some(s) => {
                let sealed =
                    self.storage.get_checkpoint(s).await?.ok_or_else(|| {
                        OramError::integrity("checkpoint", "vanished while reading")
                    })?;
                let c = Checkpoint::open(&sealed, &self.key, &self.epoch, s, &g)?;
                self.seq = c.seq;
                self.chain = c.chain;
                self.root_hash = c.root_hash;
                self.posmap = c.posmap;
                self.stash = c.stash.into_iter().collect();
                self.top = c.top;
            }
            None => {
                // No checkpoint yet: the journal must reach back to the epoch's start.
                self.seq = 0;
                self.chain = genesis(&self.epoch);
                self.root_hash = EMPTY_HASH;
                self.posmap = Vec::new();
                self.top = vec![Bucket::default(); g.cached_nodes() as usize];
            }
        }

        let mut last = None;
        let mut posmap_known: BTreeMap<u64, u32> = BTreeMap::new();
        for seq in self.seq + 1..=anchor.seq {
            let sealed = self
                .storage
                .get_journal(seq)
                .await?
                .ok_or_else(|| rolled_back("a record the anchor covers is missing"))?;
            let r = Record::open(&sealed, &self.key, &self.epoch, seq, &g)?;
            if r.prev != self.chain {
                return Err(rolled_back("a record does not follow its predecessor"));
            }
            self.chain = sha256(&[&sealed]);
            self.seq = seq;
            self.root_hash = r.root_hash;
            self.stash = r.stash.iter().cloned().collect();
            for (level, b) in (0..g.cached_levels).zip(&r.top_path) {
                self.top[g.node(r.path_leaf, level) as usize] = b.clone();
            }
            if self.posmap.is_empty() {
                posmap_known.insert(r.addr, r.new_leaf as u32);
            } else {
                self.posmap[r.addr as usize] = r.new_leaf as u32;
            }
            last = Some(r);
        }
        if self.seq != anchor.seq || self.chain != anchor.hash {
            return Err(rolled_back(
                "the storage's journal ends before the acknowledged state (rolled back)",
            ));
        }
        if self.posmap.is_empty() {
            // Replayed from the start: blocks never accessed keep a fresh uniform leaf; they
            // hold no data, so their old leaves (lost with the process) never mattered.
            self.posmap = random_posmap(&g)?;
            for (a, l) in posmap_known {
                self.posmap[a as usize] = l;
            }
        }
        if let Some(r) = &last {
            self.write_back(r).await?;
        }
        // Checkpoints past the anchor were never acknowledged. (A record past it sits in the
        // ring slot the next access overwrites.)
        for s in self.storage.list_seqs("c").await? {
            if s > anchor.seq {
                self.storage
                    .delete(&self.storage.checkpoint_path(s))
                    .await?;
            }
        }
        self.since_checkpoint = (self.seq - ckpt_seq.unwrap_or(0)) as u32;
        // A process that died between its last journal record and the checkpoint due after it
        // leaves the ring full: checkpoint now, before the next record overwrites a slot that
        // recovery still needs.
        if self.since_checkpoint >= self.params.checkpoint_every {
            self.checkpoint().await?;
        }
        Ok(())
    }
}

impl Drop for Oram {
    fn drop(&mut self) {
        for d in self.stash.values_mut() {
            d.zeroize();
        }
        for b in &mut self.top {
            for (_, d) in &mut b.blocks {
                d.zeroize();
            }
        }
    }
}
