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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_without_an_allocator_and_reads_settings() {
        let text = b"controller { name = \"ctl-a\" ports = [4000, 4001] }\n";
        let cfg = load(text).unwrap();
        assert_eq!(controller_name(&cfg, b"unnamed"), b"ctl-a");
        assert_eq!(cfg.view().find_int64("controller/ports", 0), 4000);
        assert_eq!(load(b"controller {").unwrap_err().line, 1);
    }
}
