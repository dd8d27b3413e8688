//! A resource's two files: the backing device (data) and the external meta-data file
//! (`keelson_core::repl::meta`'s v08 layout: superblock, activity-log ring, bitmap), which
//! `drbdmeta --force - v08 FILE flex-external dump-md` reads as it is.
//!
//! A missing or blank meta file is created as `drbdmeta create-md` would (just-created UUID,
//! Inconsistent); a missing backing file is created sparse at the configured size. Meta-data
//! writes are made durable (`fdatasync`) before the node hears they are done: the activity log
//! and the primary indicator are what a restart after a crash trusts.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use keelson_core::repl::bitmap::bytes_for;
use keelson_core::repl::meta::{Layout, Superblock, SUPERBLOCK_LEN};
use keelson_core::repl::node::MetaState;

use super::resource::ResourceConfig;

/// `al-extents` recorded in the superblock: the node's activity-log size.
pub const AL_EXTENTS: usize = 1237;

/// The open files and where the meta areas lie.
pub struct Disk {
    data: File,
    meta: File,
    layout: Layout,
    sb: Superblock,
    size: u64,
}

/// What the meta file held at open.
pub struct Loaded {
    /// The persisted state.
    pub meta: MetaState,
    /// The activity-log ring as on disk.
    pub al_ring: Vec<u8>,
    /// The bitmap as on disk.
    pub bitmap: Vec<u8>,
    /// The meta file was created now.
    pub created: bool,
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Which of a resource's files could not be opened: drbdsetup answers the two differently
/// (`OpenDisk`, `OpenMdDisk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// The backing file or device.
    Backing,
    /// The meta-data file.
    Meta,
}

/// Why [`Disk::open`] failed, carried inside its `io::Error`; see [`failed_area`].
#[derive(Debug)]
pub struct OpenError {
    /// The file it failed on.
    pub area: Area,
    /// What went wrong, with the path.
    pub detail: String,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let area = match self.area {
            Area::Backing => "backing",
            Area::Meta => "meta",
        };
        write!(f, "{area} {}", self.detail)
    }
}

impl std::error::Error for OpenError {}

/// The file an error of [`Disk::open`] is about, if it is one.
pub fn failed_area(e: &io::Error) -> Option<Area> {
    e.get_ref()?.downcast_ref::<OpenError>().map(|o| o.area)
}

fn ctx(path: &Path, area: Area, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(OpenError {
        area,
        detail: format!("{}: {e}", path.display()),
    })
}

impl Disk {
    /// Opens (creating where missing) the backing and meta files of `cfg`.
    pub fn open(cfg: &ResourceConfig) -> io::Result<(Disk, Loaded)> {
        let data = match open_rw(&cfg.backing) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let size = cfg.size.ok_or_else(|| {
                    ctx(
                        &cfg.backing,
                        Area::Backing,
                        "does not exist and no size is configured",
                    )
                })?;
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&cfg.backing)
                    .map_err(|e| ctx(&cfg.backing, Area::Backing, e))?;
                f.set_len(size)
                    .map_err(|e| ctx(&cfg.backing, Area::Backing, e))?;
                f
            }
            Err(e) => return Err(ctx(&cfg.backing, Area::Backing, e)),
        };
        let actual = (&data)
            .seek(SeekFrom::End(0))
            .map_err(|e| ctx(&cfg.backing, Area::Backing, e))?;
        let size = cfg.size.unwrap_or(actual & !4095);
        if actual < size {
            return Err(ctx(
                &cfg.backing,
                Area::Backing,
                format!("holds {actual} bytes, smaller than the configured size {size}"),
            ));
        }
        if size == 0 {
            return Err(ctx(&cfg.backing, Area::Backing, "is empty"));
        }
        let sectors = size / 512;
        let meta = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&cfg.meta)
            .map_err(|e| ctx(&cfg.meta, Area::Meta, e))?;
        let mut block = vec![0u8; SUPERBLOCK_LEN];
        let got = read_some(&meta, &mut block, 0).map_err(|e| ctx(&cfg.meta, Area::Meta, e))?;
        let blank = got == 0 || block.iter().all(|&b| b == 0);
        let bad = |e: &dyn std::fmt::Display| ctx(&cfg.meta, Area::Meta, e);
        let (layout, sb, created) = if blank {
            let layout = Layout::new(sectors, cfg.node.al_ring_records).map_err(|e| bad(&e))?;
            let mut sb = Superblock::new(layout, AL_EXTENTS as u32, Some(cfg.node.conn.node_id));
            MetaState::new(sectors).store(&mut sb);
            sb.emit(&mut block).map_err(|e| bad(&e))?;
            meta.set_len(layout.total_len()).map_err(|e| bad(&e))?;
            meta.write_all_at(&block, 0).map_err(|e| bad(&e))?;
            meta.sync_data().map_err(|e| bad(&e))?;
            tracing::info!(resource = %cfg.name, meta = %cfg.meta.display(), "created new meta data");
            (layout, sb, true)
        } else {
            let sb = Superblock::parse(&block).map_err(|e| bad(&e))?;
            if sb.layout.size_sectors() != sectors {
                return Err(bad(&format_args!(
                    "records a device of {} sectors, the backing device has {sectors}",
                    sb.layout.size_sectors()
                )));
            }
            if sb.layout.ring_len() != cfg.node.al_ring_records {
                return Err(bad(&format_args!(
                    "has {} activity-log records, Keelson writes {}",
                    sb.layout.ring_len(),
                    cfg.node.al_ring_records
                )));
            }
            (sb.layout, sb, false)
        };
        let mut al_ring = vec![0u8; layout.al_len() as usize];
        read_some(&meta, &mut al_ring, layout.al_offset()).map_err(|e| bad(&e))?;
        let mut bitmap = vec![0u8; bytes_for(sectors)];
        read_some(&meta, &mut bitmap, layout.bitmap_offset()).map_err(|e| bad(&e))?;
        let state = MetaState::from_superblock(&sb);
        Ok((
            Disk {
                data,
                meta,
                layout,
                sb,
                size,
            },
            Loaded {
                meta: state,
                al_ring,
                bitmap,
                created,
            },
        ))
    }

    /// A second handle on the backing file (for the flush thread).
    pub fn data_handle(&self) -> io::Result<File> {
        self.data.try_clone()
    }

    /// Device size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads data at byte `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, offset)
    }

    /// Writes data at byte `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.data.write_all_at(buf, offset)
    }

    /// Zeroes `len` bytes at `offset` (P_ZEROES, P_TRIM: the data must read back as zeroes).
    pub fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        let z = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(z.len() as u64) as usize;
            self.data.write_all_at(&z[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Makes data writes durable.
    pub fn flush(&self) -> io::Result<()> {
        self.data.sync_data()
    }

    /// Writes the superblock with `meta`'s state.
    pub fn store_meta(&mut self, meta: &MetaState) -> io::Result<()> {
        meta.store(&mut self.sb);
        self.write_sb()
    }

    /// Marks the meta data cleanly shut down (after the node's detach wrote everything).
    pub fn shutdown_clean(&mut self) -> io::Result<()> {
        self.sb.shutdown_clean();
        self.write_sb()
    }

    fn write_sb(&mut self) -> io::Result<()> {
        let mut block = [0u8; SUPERBLOCK_LEN];
        self.sb
            .emit(&mut block)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.meta.write_all_at(&block, 0)?;
        self.meta.sync_data()
    }

    /// Writes bitmap bytes at `offset` within the bitmap area.
    pub fn store_bitmap(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        self.meta
            .write_all_at(bytes, self.layout.bitmap_offset() + offset as u64)?;
        self.meta.sync_data()
    }

    /// Writes one activity-log record at `offset` within the ring.
    pub fn store_al(&self, offset: u64, record: &[u8]) -> io::Result<()> {
        if offset + record.len() as u64 > self.layout.al_len() {
            return Err(io::Error::other("activity-log record beyond the ring"));
        }
        self.meta
            .write_all_at(record, self.layout.al_offset() + offset)?;
        self.meta.sync_data()
    }
}

/// Reads what there is (a short file reads as zeroes beyond its end).
fn read_some(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[done..].fill(0);
    Ok(done)
}
