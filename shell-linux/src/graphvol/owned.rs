//! [`Owned`]: a core [`Engine`] together with what it borrows (the topology, the translator
//! table, cluster/replicate's per-file tables and the request buffer), as one value that can live in a FUSE filesystem (which must
//! be `'static`) and be dropped when the mount ends.
//!
//! The engine is sans-IO and allocation-free, so it borrows its tables instead of owning
//! them. Here they are moved to the heap and handed to the engine as `'static` references;
//! the raw pointers kept beside it free them after the engine itself is dropped. That is the
//! only unsafe code of the graph volume, and nothing else ever sees the pointers.

use std::mem::ManuallyDrop;

use keelson_core::xlator::builtin::Builtin;
use keelson_core::xlator::engine::{Engine, TableMismatch, Topology};
use keelson_core::xlator::replicate::{ReplicateArena, Tables};

use crate::volfilecmd::{MAX_LINKS, MAX_VOLUMES};

/// Frames in the pool: enough for write-behind sending its 16 kept writes down a deep graph
/// below a replicate or distribute fan-out.
pub const FRAMES: usize = 512;
/// Call stacks: one request at a time runs (the engine is behind a lock).
pub const STACKS: usize = 1;
/// Outputs queued inside one run: trace lines (two per fop per trace layer) and leaf calls.
pub const OUTPUTS: usize = 128;

/// Files with a pending heal each cluster/replicate translator keeps track of.
pub const HEAL_FILES: usize = 256;
/// Open fds each cluster/replicate translator knows the children of.
pub const AFR_FDS: usize = 1024;

/// One cluster/replicate translator's tables.
pub type AfrArena = ReplicateArena<HEAL_FILES, AFR_FDS>;

/// The engine type a graph volume runs.
pub type Eng = Engine<'static, Builtin<'static>, FRAMES, STACKS, OUTPUTS>;

/// The graph's shape, at the checked volfile's capacities.
pub type Topo = Topology<MAX_VOLUMES, MAX_LINKS>;

/// An engine and the heap blocks it borrows.
pub struct Owned {
    engine: ManuallyDrop<Box<Eng>>,
    /// The request buffer while no request runs (the engine holds it while one does).
    buf: Option<&'static mut [u8]>,
    topo: *mut Topo,
    table: *mut [Builtin<'static>],
    store: *mut [u8],
    afr: *mut [AfrArena],
}

// SAFETY: the pointers are the only owners of their blocks (created from `Box::into_raw` in
// `new`, freed only in `drop`), and what they point to (`Topology`, `Builtin`, bytes, the
// replicate tables) is `Send`; the references made from them live in `engine` and `buf`, which move with `self`.
unsafe impl Send for Owned {}

impl Owned {
    /// An engine over `topo` and the table `make` builds, with a request buffer of `buf_len`
    /// bytes and `afr_nodes` replicate tables, which `make` lends to the replicate nodes by
    /// calling its argument (one [`Tables`] per call, `None` once all are lent).
    pub fn new<E>(
        topo: Topo,
        afr_nodes: usize,
        buf_len: usize,
        make: impl FnOnce(
            &mut dyn FnMut() -> Option<Tables<'static>>,
        ) -> Result<Vec<Builtin<'static>>, E>,
    ) -> Result<Self, OwnedError<E>> {
        let afr: *mut [AfrArena] = Box::into_raw(
            (0..afr_nodes)
                .map(|_| AfrArena::new())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // SAFETY: `afr` comes from `Box::into_raw` just above and stays allocated until
        // `drop` (or the failure paths below), after every reference into it (the table's,
        // through the engine) is gone.
        let arenas: &'static mut [AfrArena] = unsafe { &mut *afr };
        let mut lend = arenas.iter_mut();
        let table = match make(&mut || lend.next().map(|a| a.tables())) {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: `make` failed and returned no table, so nothing borrows `afr`.
                unsafe { drop(Box::from_raw(afr)) };
                return Err(OwnedError::Table(e));
            }
        };
        let topo = Box::into_raw(Box::new(topo));
        let table = Box::into_raw(table.into_boxed_slice());
        let store = Box::into_raw(vec![0u8; buf_len].into_boxed_slice());
        // SAFETY: the three pointers come from `Box::into_raw` just above, are valid and
        // unaliased, and stay allocated until `drop`, which first drops every reference made
        // here (the engine's and `buf`). So `'static` is never outlived in practice.
        let (t, x, b) = unsafe { (&*topo, &mut *table, &mut *store) };
        let engine = match Engine::new(t.view(), x) {
            Ok(e) => Box::new(e),
            Err(e) => {
                // SAFETY: no reference made above survives the failed `Engine::new`; the
                // table (which borrows `afr`) goes before it.
                unsafe {
                    drop(Box::from_raw(store));
                    drop(Box::from_raw(table));
                    drop(Box::from_raw(topo));
                    drop(Box::from_raw(afr));
                }
                return Err(OwnedError::Engine(e));
            }
        };
        Ok(Owned {
            engine: ManuallyDrop::new(engine),
            buf: Some(b),
            topo,
            table,
            store,
            afr,
        })
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut Eng {
        &mut self.engine
    }

    /// The engine, read-only.
    pub fn engine_ref(&self) -> &Eng {
        &self.engine
    }

    /// Takes the request buffer to lend it with a request (`None` while one runs, or after a
    /// request that never finished kept it).
    pub fn take_buf(&mut self) -> Option<&'static mut [u8]> {
        self.buf.take()
    }

    /// Puts the buffer back when the engine handed it back.
    pub fn put_buf(&mut self, buf: &'static mut [u8]) {
        self.buf = Some(buf);
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.buf = None;
        // SAFETY: the engine goes first and is never touched again; after it (and `buf`,
        // cleared above) no reference into the four blocks exists, so they can be freed
        // through the pointers `new` got from `Box::into_raw`.
        unsafe {
            ManuallyDrop::drop(&mut self.engine);
            drop(Box::from_raw(self.store));
            drop(Box::from_raw(self.table));
            drop(Box::from_raw(self.topo));
            // Last: the table borrowed the replicate tables.
            drop(Box::from_raw(self.afr));
        }
    }
}

/// Why [`Owned::new`] failed.
#[derive(Debug)]
pub enum OwnedError<E> {
    /// Building the table did.
    Table(E),
    /// The table does not match the topology.
    Engine(TableMismatch),
}
