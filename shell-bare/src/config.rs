//! Controller configuration: config-tree text parsed into fixed storage with no allocator.

use keelson_core::config::{Error, FixedTree, Lookup, ParseOptions, Tree};

/// Capacity for a controller's configuration: nodes, values and unescaped-string bytes.
pub type ControllerConfig<'a> = FixedTree<'a, 128, 256, 1024>;

/// Parses `text` (borrowing its strings) in libdevmapper's dup-check mode.
pub fn load(text: &[u8]) -> Result<ControllerConfig<'_>, Error> {
    let mut t = Tree::new(Default::default());
    t.parse(text, ParseOptions::MERGE)?;
    Ok(t)
}

/// The controller's name, `controller/name`, or `dflt`.
pub fn controller_name<'t>(cfg: &'t ControllerConfig<'_>, dflt: &'t [u8]) -> &'t [u8] {
    cfg.view().find_str("controller/name", dflt)
}
