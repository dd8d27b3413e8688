//! `keelctl config`: the config-tree codec on files.
//!
//! Every failure is a [`CmdError`] whose text is what the user sees: `FILE:LINE:COL: message` for
//! bad text, `FILE: message` otherwise.

use std::fmt;
use std::io::Write;

use keelson_core::config::{Lookup, NodeRef, OwnedTree, ParseOptions, Tree, Value};

use crate::source::Source;

/// A failure to report on stderr (exit status 1).
#[derive(Debug)]
pub struct CmdError(pub String);

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdError {}

/// libdevmapper's default (`dm_config_from_string`) merges duplicates; `--no-dup-check` is
/// libdaemon's mode.
pub fn options(no_dup_check: bool) -> ParseOptions {
    if no_dup_check {
        ParseOptions::KEEP
    } else {
        ParseOptions::MERGE
    }
}

fn read(src: &Source) -> Result<Vec<u8>, CmdError> {
    src.read()
        .map_err(|e| CmdError(format!("{}: {e}", src.name())))
}

/// Reads and parses a text file into an owned tree.
pub fn load(src: &Source, opts: ParseOptions) -> Result<OwnedTree, CmdError> {
    let text = read(src)?;
    OwnedTree::from_text_owned(&text, opts).map_err(|e| CmdError(format!("{}:{e}", src.name())))
}

fn write_out(bytes: &[u8]) -> Result<(), CmdError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CmdError(format!("stdout: {e}")))
}

/// `fmt`: the canonical text.
pub fn fmt(src: &Source, opts: ParseOptions) -> Result<(), CmdError> {
    let text = read(src)?;
    let mut tree = Tree::new(keelson_core::config::Growable::new());
    tree.parse(&text, opts)
        .map_err(|e| CmdError(format!("{}:{e}", src.name())))?;
    write_out(&tree.view().to_text())
}

/// `get`: the value at `path` — a string as its bytes, numbers as the writer prints them, arrays
/// in `[a,b]` form, a section as config text.
pub fn get(src: &Source, path: &str, opts: ParseOptions) -> Result<(), CmdError> {
    let tree = load(src, opts)?;
    let view = tree.view();
    let node = view
        .find_node(path)
        .ok_or_else(|| CmdError(format!("{}: {path}: no such setting", src.name())))?;
    write_out(&render(node))
}

fn render(node: NodeRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if node.is_section() {
        let _ = node.write_one(&mut out);
        return out;
    }
    let mut values = node.values();
    match (values.next(), values.next()) {
        (Some(v), None) => match v.value {
            Value::Str(s) => out.extend_from_slice(s),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => out.extend_from_slice(format!("{:.6}", f64::from(f)).as_bytes()),
            Value::EmptyArray => out.extend_from_slice(b"[]"),
        },
        _ => {
            // An array: the writer's own form, without the key.
            let _ = node.write_one(&mut out);
            let eq = out.iter().position(|&c| c == b'=').map_or(0, |i| i + 1);
            out.drain(..eq);
            out.pop();
        }
    }
    out.push(b'\n');
    out
}

/// `encode`: text to the postcard form.
pub fn encode(src: &Source, opts: ParseOptions) -> Result<(), CmdError> {
    let tree = load(src, opts)?;
    let bytes = tree
        .to_postcard_vec()
        .map_err(|e| CmdError(format!("{}: encoding: {e}", src.name())))?;
    write_out(&bytes)
}

/// `decode`: the postcard form back to text.
pub fn decode(src: &Source) -> Result<(), CmdError> {
    let bytes = read(src)?;
    let mut tree = OwnedTree::empty();
    tree.decode_postcard(&bytes)
        .map_err(|e| CmdError(format!("{}: not a postcard config tree: {e}", src.name())))?;
    write_out(&tree.view().to_text())
}
