//! The export table: names to backends, shared by every listener and changed while serving
//! (keelsond adds an export when a resource comes up and drops it when it goes down).

use std::sync::{Arc, RwLock};

use keelson_core::nbd::{ExportInfo, Exports};

use super::backend::Backend;

/// One export: its name and what serves it.
type Entry = (String, Arc<dyn Backend>);

/// Exports by name. Cheap to clone (one shared table); each new connection sees the table as it
/// was when the connection was accepted.
#[derive(Clone, Default)]
pub struct ExportTable {
    inner: Arc<RwLock<Vec<Entry>>>,
}

impl ExportTable {
    /// An empty table.
    pub fn new() -> ExportTable {
        ExportTable::default()
    }

    /// Adds or replaces export `name` (the empty name is the default export).
    pub fn insert(&self, name: &str, backend: Arc<dyn Backend>) {
        let mut t = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match t.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = backend,
            None => t.push((name.to_owned(), backend)),
        }
    }

    /// Removes export `name`; connections already using it keep their backend.
    pub fn remove(&self, name: &str) -> Option<Arc<dyn Backend>> {
        let mut t = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let i = t.iter().position(|(n, _)| n == name)?;
        Some(t.remove(i).1)
    }

    /// The export names, in insertion order.
    pub fn names(&self) -> Vec<String> {
        let t = self.inner.read().unwrap_or_else(|p| p.into_inner());
        t.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The table as it is now, for one connection.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let t = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Snapshot { entries: t.clone() }
    }
}

/// One connection's copy of the table, which the core session looks names up in.
pub(crate) struct Snapshot {
    entries: Vec<Entry>,
}

impl Snapshot {
    /// The backend behind an [`ExportInfo::id`].
    pub(crate) fn backend(&self, id: usize) -> Option<&Arc<dyn Backend>> {
        self.entries.get(id).map(|(_, b)| b)
    }
}

impl Exports for Snapshot {
    fn lookup(&self, name: &[u8]) -> Option<ExportInfo> {
        let (id, (_, b)) = self
            .entries
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n.as_bytes() == name)?;
        Some(ExportInfo {
            read_only: b.read_only(),
            multi_conn: b.multi_conn(),
            min_block: b.min_block(),
            ..ExportInfo::new(id, b.size())
        })
    }

    fn name(&self, index: usize) -> Option<&[u8]> {
        self.entries.get(index).map(|(n, _)| n.as_bytes())
    }
}
