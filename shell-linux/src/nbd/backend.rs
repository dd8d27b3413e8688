//! What an export is served from: the [`Backend`] trait the connection threads call, and
//! [`FileBackend`] over a regular file or a block device.
//!
//! A backend whose writes wait on something slow (the replicated device waits for the peer's
//! ack) queues them instead ([`Backend::queues_writes`], [`Backend::submit_write`]): the
//! connection then keeps several in flight and replies as each finishes.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::fcntl::{fallocate, FallocateFlags};

/// The answer to one [`Backend::submit_write`], given once with [`Done::finish`]. Dropped
/// unanswered it answers EIO, so a backend that loses a write cannot hang its connection.
pub struct Done(Option<Box<dyn FnOnce(io::Result<()>) + Send>>);

impl Done {
    /// An answer that goes to `f`.
    pub fn new(f: impl FnOnce(io::Result<()>) + Send + 'static) -> Done {
        Done(Some(Box::new(f)))
    }

    /// Answers with `r`.
    pub fn finish(mut self, r: io::Result<()>) {
        if let Some(f) = self.0.take() {
            f(r);
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(io::Error::from_raw_os_error(libc::EIO)));
        }
    }
}

/// The storage behind one export. Calls come from several connection threads at once, so the
/// methods take `&self`; each call finishes (or fails) before its reply is sent.
pub trait Backend: Send + Sync {
    /// Size in bytes (fixed for the life of a connection; read when the client picks it).
    fn size(&self) -> u64;

    /// Whether writes are refused (advertised as `NBD_FLAG_READ_ONLY`, and every write, trim
    /// and write-zeroes gets `NBD_EPERM`).
    fn read_only(&self) -> bool;

    /// Fills `buf` from `offset` (always within `size`).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes `data` at `offset` (always within `size`).
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;

    /// Makes every completed write durable (`NBD_CMD_FLUSH`, and after a write with FUA).
    fn flush(&self) -> io::Result<()>;

    /// Discards a range: a hint, so doing nothing is correct (the default).
    fn trim(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// Makes a range read back as zeroes; `may_trim` allows a hole. The default writes zeroes.
    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool) -> io::Result<()> {
        let _ = may_trim;
        write_zero_blocks(self, offset, len)
    }

    /// The smallest unit of I/O, advertised in `NBD_INFO_BLOCK_SIZE` so clients align their
    /// requests (qemu then reads, modifies and writes around an unaligned one); requests not
    /// aligned to it get EINVAL. A power of two; 1 = any byte.
    fn min_block(&self) -> u32 {
        1
    }

    /// Whether writes are better started with [`Self::submit_write`] and answered later: the
    /// connection keeps reading requests while they are in flight.
    fn queues_writes(&self) -> bool {
        false
    }

    /// Starts writing `data` at `offset`; `done` gets the result, on any thread, once the write
    /// is complete as [`Self::write_at`]'s return would mean. The default is `write_at`.
    fn submit_write(&self, data: &[u8], offset: u64, done: Done) {
        done.finish(self.write_at(data, offset));
    }

    /// Whether a flush on one connection covers writes made through another
    /// (`NBD_FLAG_CAN_MULTI_CONN`); true when all connections share one cache.
    fn multi_conn(&self) -> bool {
        false
    }
}

/// Writes zeroes over a range in 1 MiB pieces, for backends without a faster way.
pub fn write_zero_blocks<B: Backend + ?Sized>(b: &B, offset: u64, len: u64) -> io::Result<()> {
    let zeroes = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(zeroes.len() as u64) as usize;
        b.write_at(&zeroes[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// A regular file or block device, read with `pread`, written with `pwrite`, flushed with
/// `fdatasync`; trims punch holes and write-zeroes use `FALLOC_FL_ZERO_RANGE` where the file
/// system has them.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
    size: u64,
    read_only: bool,
}

impl FileBackend {
    /// Opens `path` (read-write unless `read_only`); its size is taken now.
    pub fn open(path: &Path, read_only: bool) -> io::Result<FileBackend> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        FileBackend::new(file, read_only)
    }

    /// Serves an open file. The size is where `lseek(SEEK_END)` lands, which works for block
    /// devices too (their metadata length is 0).
    pub fn new(file: File, read_only: bool) -> io::Result<FileBackend> {
        let size = (&file).seek(SeekFrom::End(0))?;
        Ok(FileBackend {
            file,
            size,
            read_only,
        })
    }

    /// The file served.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Backend for FileBackend {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        self.file.write_all_at(data, offset)
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn trim(&self, offset: u64, len: u64) -> io::Result<()> {
        let mode = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, mode, off(offset)?, off(len)?) {
            // A trim is advisory: a file system without hole punching just keeps the data.
            Err(nix::errno::Errno::EOPNOTSUPP) => Ok(()),
            r => r.map_err(io::Error::from),
        }
    }

    fn write_zeroes(&self, offset: u64, len: u64, may_trim: bool) -> io::Result<()> {
        let mode = if may_trim {
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE
        } else {
            FallocateFlags::FALLOC_FL_ZERO_RANGE | FallocateFlags::FALLOC_FL_KEEP_SIZE
        };
        match fallocate(&self.file, mode, off(offset)?, off(len)?) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENODEV) => {
                write_zero_blocks(self, offset, len)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn multi_conn(&self) -> bool {
        // Every connection writes through the same page cache, and fdatasync covers them all.
        true
    }
}

fn off(v: u64) -> io::Result<i64> {
    i64::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_backend_round_trip() {
        let path = std::env::temp_dir().join(format!("keelson-nbd-backend-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 65536]).unwrap();
        let b = FileBackend::open(&path, false).unwrap();
        assert_eq!((b.size(), b.read_only()), (65536, false));
        b.write_at(b"hello", 100).unwrap();
        b.flush().unwrap();
        let mut buf = [0u8; 7];
        b.read_at(&mut buf, 99).unwrap();
        assert_eq!(&buf, b"\x07hello\x07");
        b.write_zeroes(0, 8192, false).unwrap();
        b.trim(8192, 8192).unwrap();
        b.read_at(&mut buf, 100).unwrap();
        assert_eq!(buf, [0; 7]);
        let ro = FileBackend::open(&path, true).unwrap();
        assert_eq!(
            ro.write_at(b"x", 0).unwrap_err().raw_os_error(),
            Some(libc::EROFS)
        );
        std::fs::remove_file(&path).unwrap();
    }
}
