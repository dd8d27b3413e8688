//! Input files named on the command line, where `-` means standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A named input: a path, or standard input for `-`.
#[derive(Clone, Debug)]
pub struct Source {
    path: Option<PathBuf>,
}

impl Source {
    /// `-` (or nothing) is standard input.
    pub fn new(arg: Option<&Path>) -> Self {
        match arg {
            Some(p) if p != Path::new("-") => Source {
                path: Some(p.to_path_buf()),
            },
            _ => Source { path: None },
        }
    }

    /// The name used in messages (`-` for standard input, as in `FILE:LINE:COL: …`).
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "-".into(), |p| p.display().to_string())
    }

    /// The whole content.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match &self.path {
            Some(p) => std::fs::read(p),
            None => {
                let mut v = Vec::new();
                std::io::stdin().lock().read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}
