//! One client connection: bytes from the socket into the core session, its actions run on the
//! backend, its replies (and read data) back to the socket. Blocking I/O on the connection's
//! own thread, which runs each action before reading on, except writes to a backend that
//! [queues them](super::Backend::queues_writes): those stay in flight (up to the session's
//! limit) while the thread reads the next requests, and a second thread of the connection
//! sends their replies as they finish, in whatever order that is (NBD matches by handle).

use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Condvar, Mutex, MutexGuard};

use keelson_core::nbd::wire::ErrorCode;
use keelson_core::nbd::{Action, Config, Session};

use super::backend::Done;
use super::exports::{ExportTable, Snapshot};

/// Requests the session may hold at once: the writes a queueing backend has in flight, and
/// error replies waiting to go out.
const IN_FLIGHT: usize = 16;

/// How a connection ended without an I/O error.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// `NBD_CMD_DISC` or `NBD_OPT_ABORT`, everything answered.
    Disconnect,
    /// The client closed its end (allowed between messages; mid-message it is the same to us).
    Closed,
    /// The client broke the protocol; the connection was dropped (a hard disconnect).
    Protocol(keelson_core::nbd::session::Error),
}

/// Serves one already-connected client (any byte stream: a socket accepted elsewhere, a
/// socketpair, a pipe pair) on the calling thread until it leaves, with `exports` as they are
/// now. `Err` only for I/O errors on the stream.
pub fn serve_stream<R: Read, W: Write + Send>(
    reader: R,
    writer: W,
    exports: &ExportTable,
    config: Config,
) -> io::Result<Ended> {
    serve(reader, writer, exports.snapshot(), config)
}

/// What the connection's two threads share.
struct Shared<'e, W: Write> {
    session: Session<&'e Snapshot, IN_FLIGHT>,
    out: BufWriter<W>,
    msg: Vec<u8>,
    /// The data of the one read whose reply may be queued.
    read_data: Vec<u8>,
    /// Writes started on the backend and not answered yet.
    queued: usize,
}

impl<W: Write> Shared<'_, W> {
    /// Writes out every reply the session has ready.
    fn transmit(&mut self) -> io::Result<()> {
        while let Some(t) = self
            .session
            .poll_transmit(&mut self.msg)
            .map_err(io::Error::other)?
        {
            self.out.write_all(&self.msg[..t.len])?;
            if let Some(r) = t.read {
                self.out.write_all(&self.read_data[..r.len as usize])?;
            }
        }
        Ok(())
    }
}

/// The connection's state and the signal that an answer came in.
struct Conn<'e, W: Write> {
    shared: Mutex<Shared<'e, W>>,
    answered: Condvar,
}

impl<'e, W: Write> Conn<'e, W> {
    fn lock(&self) -> MutexGuard<'_, Shared<'e, W>> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An answer from the backend: the request's handle and outcome.
type Answer = (u64, Result<(), ErrorCode>);

/// [`serve_stream`] with the table already copied.
pub(crate) fn serve<R: Read, W: Write + Send>(
    mut reader: R,
    writer: W,
    exports: Snapshot,
    config: Config,
) -> io::Result<Ended> {
    let conn = Conn {
        shared: Mutex::new(Shared {
            session: Session::new(&exports, config),
            out: BufWriter::with_capacity(1 << 18, writer),
            msg: vec![0u8; config.output_buffer_len()],
            read_data: Vec::new(),
            queued: 0,
        }),
        answered: Condvar::new(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let replier = scope.spawn(|| reply(&conn, rx));
        // `tx` goes with the request loop: once it and every backend's copy are gone, the
        // replier has answered everything and ends.
        let ended = requests(&mut reader, &exports, &conn, config, tx);
        let replied = replier.join().unwrap_or(Ok(()));
        let ended = ended?;
        // A client that left or broke the protocol cannot take its last replies anyway.
        if ended == Ended::Disconnect {
            replied?;
        }
        Ok(ended)
    })
}

/// The request loop: input into the session, actions to the backend.
fn requests<R: Read, W: Write>(
    reader: &mut R,
    exports: &Snapshot,
    conn: &Conn<'_, W>,
    config: Config,
    tx: Sender<Answer>,
) -> io::Result<Ended> {
    let mut input = Input::new(config.input_buffer_len());
    let mut g = conn.lock();
    loop {
        g.transmit()?;
        if g.session.is_finished() {
            g.out.flush()?;
            return Ok(match g.session.failed() {
                Some(e) => Ended::Protocol(e),
                None => Ended::Disconnect,
            });
        }
        let progress = match g.session.handle_input(input.pending()) {
            Ok(p) => p,
            Err(e) => {
                g.out.flush()?;
                return Ok(Ended::Protocol(e));
            }
        };
        if let Some(action) = progress.action {
            if let Some(handle) = action.handle() {
                let backend = g.session.export().and_then(|e| exports.backend(e.id));
                match (backend, &action) {
                    (
                        Some(b),
                        &Action::Write {
                            offset,
                            data,
                            fua: false,
                            ..
                        },
                    ) if b.queues_writes() => {
                        g.queued += 1;
                        let tx = tx.clone();
                        let done = Done::new(move |r: io::Result<()>| {
                            let _ = tx.send((handle, r.map_err(|e| code(&e))));
                        });
                        b.submit_write(data, offset, done);
                    }
                    (backend, _) => {
                        let result = match backend {
                            Some(b) => run(b.as_ref(), &action, &mut g.read_data),
                            None => Err(ErrorCode::Io),
                        };
                        g.session
                            .complete(handle, result)
                            .map_err(io::Error::other)?;
                    }
                }
            }
            input.consume(progress.consumed);
            continue;
        }
        let (consumed, need) = (progress.consumed, progress.need);
        input.consume(consumed);
        if consumed > 0 {
            // Replies may have been queued (an option answered, a request refused): send them
            // before waiting for the client, who may be waiting for them.
            continue;
        }
        match need {
            Some(need) => {
                // About to block on the client: send what we have first, and let the replier
                // answer writes meanwhile.
                g.out.flush()?;
                drop(g);
                let more = input.fill(reader, need)?;
                g = conn.lock();
                if !more {
                    g.out.flush()?;
                    return Ok(Ended::Closed);
                }
            }
            None if g.queued > 0 => {
                // Every slot is taken, or a disconnect waits for the writes in flight.
                g.out.flush()?;
                g = conn.answered.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            None => {}
        }
    }
}

/// The replier: answers from the backend into the session and out to the client. After an
/// I/O error it only counts the rest, so the request loop never waits for them in vain.
fn reply<W: Write>(conn: &Conn<'_, W>, answers: Receiver<Answer>) -> io::Result<()> {
    let mut result = Ok(());
    for (handle, r) in answers {
        let mut g = conn.lock();
        g.queued -= 1;
        if result.is_ok() {
            result = g
                .session
                .complete(handle, r)
                .map_err(io::Error::other)
                .and_then(|()| g.transmit())
                .and_then(|()| g.out.flush());
        }
        drop(g);
        conn.answered.notify_all();
    }
    result
}

/// Runs one action on the backend; a read leaves its bytes in `read_data`.
fn run(
    b: &dyn super::Backend,
    action: &Action<'_>,
    read_data: &mut Vec<u8>,
) -> Result<(), ErrorCode> {
    let r = match *action {
        Action::Read { offset, len, .. } => {
            let len = len as usize;
            if read_data.len() < len {
                read_data.resize(len, 0);
            }
            b.read_at(&mut read_data[..len], offset)
        }
        Action::Write {
            offset, data, fua, ..
        } => b.write_at(data, offset).and_then(|()| durable(b, fua)),
        Action::Flush { .. } => b.flush(),
        Action::Trim {
            offset, len, fua, ..
        } => b.trim(offset, len.into()).and_then(|()| durable(b, fua)),
        Action::WriteZeroes {
            offset,
            len,
            fua,
            no_hole,
            ..
        } => b
            .write_zeroes(offset, len.into(), !no_hole)
            .and_then(|()| durable(b, fua)),
        Action::Disconnect => Ok(()),
    };
    r.map_err(|e| code(&e))
}

/// The NBD error an I/O error becomes.
fn code(e: &io::Error) -> ErrorCode {
    match (e.raw_os_error(), e.kind()) {
        (Some(errno), _) => ErrorCode::from_errno(errno),
        (None, io::ErrorKind::PermissionDenied) => ErrorCode::Perm,
        _ => ErrorCode::Io,
    }
}

/// FUA: the reply may only go out once the data is durable (proto.md "Ordering").
fn durable(b: &dyn super::Backend, fua: bool) -> io::Result<()> {
    if fua {
        b.flush()
    } else {
        Ok(())
    }
}

/// Received bytes not yet consumed, in a buffer that grows up to the session's limit.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl Input {
    fn new(max: usize) -> Input {
        Input {
            buf: vec![0u8; (64 << 10).min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads until at least `need` bytes are pending (taking whatever else arrives); `false` at
    /// end of stream.
    fn fill<R: Read>(&mut self, r: &mut R, need: usize) -> io::Result<bool> {
        let need = need.min(self.max);
        if self.buf.len() - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                // Grow geometrically so a stream of large writes does not reallocate each time.
                let len = need.max(self.buf.len() * 2).min(self.max);
                self.buf.resize(len, 0);
            }
        }
        while self.end - self.start < need {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    use keelson_core::nbd::wire::transmission::Command;
    use keelson_core::nbd::wire::{InfoRequest, OptionRequestRepr, RequestRepr, SimpleReplyRepr};

    use super::*;
    use crate::nbd::FileBackend;

    /// Client flags (fixed newstyle, no zeroes), NBD_OPT_GO for the default export.
    fn go() -> Vec<u8> {
        let mut msg = vec![0u8, 0, 0, 3];
        let mut data = [0u8; 6];
        InfoRequest::emit(b"", &[], &mut data).unwrap();
        let mut opt = [0u8; 22];
        OptionRequestRepr {
            option: 7,
            length: 6,
        }
        .emit(&data, &mut opt)
        .unwrap();
        msg.extend_from_slice(&opt);
        msg
    }

    /// Appends NBD_CMD_DISC.
    fn disc(msg: &mut Vec<u8>, cookie: u64) {
        let mut req = [0u8; 28];
        RequestRepr {
            command: Command::Disc,
            cookie,
            flags: 0,
            offset: 0,
            length: 0,
        }
        .emit(&mut req)
        .unwrap();
        msg.extend_from_slice(&req);
    }

    /// A socketpair client: GO, a write, a read back, DISC; the server returns `Disconnect`.
    #[test]
    fn serve_stream_over_a_socketpair() {
        let path = std::env::temp_dir().join(format!("keelson-nbd-conn-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let exports = ExportTable::new();
        exports.insert("", Arc::new(FileBackend::open(&path, false).unwrap()));
        let (mut client, server) = UnixStream::pair().unwrap();
        let r = server.try_clone().unwrap();
        let t = std::thread::spawn(move || serve_stream(r, server, &exports, Config::DEFAULT));

        let mut msg = go();
        let mut req = [0u8; 28];
        let write = RequestRepr {
            flags: 1,
            command: Command::Write,
            cookie: 1,
            offset: 4096,
            length: 5,
        };
        write.emit(&mut req).unwrap();
        msg.extend_from_slice(&req);
        msg.extend_from_slice(b"hello");
        RequestRepr {
            command: Command::Read,
            cookie: 2,
            flags: 0,
            ..write
        }
        .emit(&mut req)
        .unwrap();
        msg.extend_from_slice(&req);
        disc(&mut msg, 3);
        client.write_all(&msg).unwrap();

        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), Ended::Disconnect);
        // Greeting 18, INFO_EXPORT 32, BLOCK_SIZE 34, ACK 20, two replies, 5 bytes read.
        assert_eq!(got.len(), 18 + 32 + 34 + 20 + 16 + 16 + 5);
        let replies = &got[104..];
        assert_eq!(
            SimpleReplyRepr::parse(replies).unwrap(),
            SimpleReplyRepr::new(1, Ok(()))
        );
        assert_eq!(SimpleReplyRepr::parse(&replies[16..]).unwrap().cookie, 2);
        assert_eq!(&replies[32..], b"hello");
        assert_eq!(&std::fs::read(&path).unwrap()[4096..4101], b"hello");
        std::fs::remove_file(&path).unwrap();
    }

    /// Writes that wait in a list until the test answers them.
    struct Held {
        writes: Mutex<Vec<(u64, Done)>>,
        arrived: Condvar,
    }

    impl crate::nbd::Backend for Held {
        fn size(&self) -> u64 {
            1 << 20
        }
        fn read_only(&self) -> bool {
            false
        }
        fn read_at(&self, buf: &mut [u8], _offset: u64) -> io::Result<()> {
            buf.fill(0);
            Ok(())
        }
        fn write_at(&self, _data: &[u8], _offset: u64) -> io::Result<()> {
            unreachable!("writes are queued")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
        fn queues_writes(&self) -> bool {
            true
        }
        fn submit_write(&self, _data: &[u8], offset: u64, done: Done) {
            self.writes.lock().unwrap().push((offset, done));
            self.arrived.notify_all();
        }
    }

    /// Three pipelined writes to a queueing backend are all in flight at once; they are
    /// answered in the order they finish (the last first), a lost answer becomes EIO, and the
    /// disconnect waits for them.
    #[test]
    fn queued_writes_are_answered_as_they_finish() {
        let held = Arc::new(Held {
            writes: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let exports = ExportTable::new();
        exports.insert("", held.clone());
        let (mut client, server) = UnixStream::pair().unwrap();
        let r = server.try_clone().unwrap();
        let t = std::thread::spawn(move || serve_stream(r, server, &exports, Config::DEFAULT));

        let mut msg = go();
        let mut req = [0u8; 28];
        for cookie in 1..=3u64 {
            RequestRepr {
                flags: 0,
                command: Command::Write,
                cookie,
                offset: cookie * 4096,
                length: 512,
            }
            .emit(&mut req)
            .unwrap();
            msg.extend_from_slice(&req);
            msg.extend_from_slice(&[cookie as u8; 512]);
        }
        disc(&mut msg, 9);
        client.write_all(&msg).unwrap();

        // All three reach the backend before any is answered.
        let mut w = held.writes.lock().unwrap();
        while w.len() < 3 {
            w = held.arrived.wait(w).unwrap();
        }
        let mut w: Vec<(u64, Done)> = std::mem::take(&mut *w);
        let (o3, d3) = w.pop().unwrap();
        let (o2, d2) = w.pop().unwrap();
        let (o1, d1) = w.pop().unwrap();
        assert_eq!((o1, o2, o3), (4096, 8192, 12288));
        d3.finish(Ok(()));
        drop(d2);
        d1.finish(Ok(()));

        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), Ended::Disconnect);
        let replies = &got[104..];
        assert_eq!(replies.len(), 3 * 16);
        let cookies: Vec<(u64, bool)> = replies
            .chunks(16)
            .map(|r| {
                let r = SimpleReplyRepr::parse(r).unwrap();
                (r.cookie, r.error == 0)
            })
            .collect();
        assert_eq!(cookies, [(3, true), (2, false), (1, true)]);
        assert_eq!(
            SimpleReplyRepr::parse(&replies[16..]).unwrap(),
            SimpleReplyRepr::new(2, Err(ErrorCode::Io))
        );
    }
}
