//! A running resource as the rest of keelsond sees it: a [`Handle`] to its thread (commands,
//! status) and [`Device`], the NBD [`Backend`] whose reads and writes go through the node, so
//! a write is acknowledged to the NBD client only when the resource's protocol says it is done
//! (A: sent, B: received by the peer, C: on the peer's disk).

use std::io;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use keelson_core::repl::admin::{Failure, Flags, RetCode, Verb};
use keelson_core::repl::conn::Role;
use mio::Waker;

use super::link::{self, Request, Snapshot};
use super::resource::ResourceConfig;
use crate::nbd::{Backend, Done};

/// The channel into a resource's thread.
#[derive(Clone)]
struct Chan {
    tx: Sender<Request>,
    waker: Arc<Waker>,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl Chan {
    fn send(&self, r: Request) -> bool {
        let ok = self.tx.send(r).is_ok();
        let _ = self.waker.wake();
        ok
    }

    fn snapshot(&self) -> Snapshot {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A resource whose thread runs.
pub struct Handle {
    /// Its settings.
    pub cfg: ResourceConfig,
    chan: Chan,
    thread: Option<JoinHandle<()>>,
    size: u64,
}

impl Handle {
    /// Opens the resource's disks, binds its listener and starts its thread (`up`).
    pub fn start(cfg: ResourceConfig) -> io::Result<Handle> {
        let (tx, rx) = mpsc::channel();
        let (link, waker, snapshot) = link::open(cfg.clone(), rx)?;
        let size = link.size();
        let thread = std::thread::Builder::new()
            .name(format!("repl-{}", cfg.name))
            .spawn(move || link.run())?;
        Ok(Handle {
            cfg,
            chan: Chan {
                tx,
                waker,
                snapshot,
            },
            thread: Some(thread),
            size,
        })
    }

    /// Runs a command on the node.
    pub fn command(&self, verb: Verb, flags: Flags) -> Result<(), Failure> {
        let (reply, rx) = mpsc::channel();
        if !self.chan.send(Request::Command { verb, flags, reply }) {
            return Err(RetCode::ResNotKnown.into());
        }
        rx.recv().unwrap_or(Err(RetCode::ResNotKnown.into()))
    }

    /// The latest status.
    pub fn snapshot(&self) -> Snapshot {
        self.chan.snapshot()
    }

    /// The NBD backend of this resource.
    pub fn device(&self) -> Arc<Device> {
        Arc::new(Device {
            chan: self.chan.clone(),
            size: self.size,
        })
    }

    /// `down`: demote, disconnect, detach and end the thread. A Primary that cannot demote
    /// refuses and keeps running.
    pub fn stop(&mut self) -> Result<(), Failure> {
        let (reply, rx) = mpsc::channel();
        if self.chan.send(Request::Stop { reply }) {
            if let Ok(Err(f)) = rx.recv() {
                return Err(f);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (reply, rx) = mpsc::channel();
            if self.chan.send(Request::Stop { reply }) {
                let _ = rx.recv();
            }
            let _ = t.join();
        }
    }
}

/// The NBD backend: requests go to the resource's thread and wait for its answer.
pub struct Device {
    chan: Chan,
    size: u64,
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

fn gone() -> io::Error {
    io::Error::from_raw_os_error(libc::ENXIO)
}

impl Device {
    fn ask<T>(&self, make: impl FnOnce(Sender<io::Result<T>>) -> Request) -> io::Result<T> {
        let (tx, rx) = mpsc::channel();
        if !self.chan.send(make(tx)) {
            return Err(gone());
        }
        rx.recv().unwrap_or_else(|_| Err(gone()))
    }

    fn aligned(&self, offset: u64, len: u64) -> io::Result<()> {
        if !offset.is_multiple_of(512) || !len.is_multiple_of(512) {
            return Err(einval());
        }
        Ok(())
    }
}

impl Backend for Device {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.chan.snapshot().status.role != Role::Primary
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.aligned(offset, buf.len() as u64)?;
        let len = buf.len();
        let data = self.ask(|reply| Request::Read { offset, len, reply })?;
        buf.copy_from_slice(&data);
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.submit_write(
            data,
            offset,
            Done::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(gone()))
    }

    /// The node takes whole sectors only.
    fn min_block(&self) -> u32 {
        512
    }

    fn queues_writes(&self) -> bool {
        true
    }

    /// The write goes to the resource's thread, which answers once the protocol is satisfied.
    fn submit_write(&self, data: &[u8], offset: u64, done: Done) {
        if let Err(e) = self.aligned(offset, data.len() as u64) {
            return done.finish(Err(e));
        }
        // A thread that is gone drops the request, and the dropped answer says EIO.
        self.chan.send(Request::Write {
            offset,
            data: data.to_vec(),
            fua: false,
            reply: done,
        });
    }

    fn flush(&self) -> io::Result<()> {
        self.ask(|reply| Request::Flush { reply })
    }

    fn write_zeroes(&self, offset: u64, len: u64, _may_trim: bool) -> io::Result<()> {
        self.aligned(offset, len)?;
        crate::nbd::backend::write_zero_blocks(self, offset, len)
    }
}
