//! One client connection: bytes from the socket into the core session, its actions run on the
//! backend, its replies (and read data) back to the socket. Blocking I/O on the connection's
//! own thread; each action completes before the next request is read.

use std::io::{self, BufWriter, Read, Write};

use keelson_core::nbd::wire::ErrorCode;
use keelson_core::nbd::{Action, Config, Session};

use super::exports::{ExportTable, Snapshot};

/// Requests the session may hold at once; this shell completes each before reading on, so more
/// only lets error replies queue up.
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
pub fn serve_stream<R: Read, W: Write>(
    reader: R,
    writer: W,
    exports: &ExportTable,
    config: Config,
) -> io::Result<Ended> {
    serve(reader, writer, exports.snapshot(), config)
}

/// [`serve_stream`] with the table already copied.
pub(crate) fn serve<R: Read, W: Write>(
    mut reader: R,
    writer: W,
    exports: Snapshot,
    config: Config,
) -> io::Result<Ended> {
    let mut session: Session<&Snapshot, IN_FLIGHT> = Session::new(&exports, config);
    let mut out = BufWriter::with_capacity(1 << 18, writer);
    let mut msg = vec![0u8; config.output_buffer_len()];
    let mut input = Input::new(config.input_buffer_len());
    // The data of the one read whose reply may be queued.
    let mut read_data: Vec<u8> = Vec::new();
    loop {
        while let Some(t) = session.poll_transmit(&mut msg).map_err(io::Error::other)? {
            out.write_all(&msg[..t.len])?;
            if let Some(r) = t.read {
                out.write_all(&read_data[..r.len as usize])?;
            }
        }
        if session.is_finished() {
            out.flush()?;
            return Ok(match session.failed() {
                Some(e) => Ended::Protocol(e),
                None => Ended::Disconnect,
            });
        }
        let progress = match session.handle_input(input.pending()) {
            Ok(p) => p,
            Err(e) => {
                out.flush()?;
                return Ok(Ended::Protocol(e));
            }
        };
        if let Some(action) = progress.action {
            if let Some(handle) = action.handle() {
                let backend = session.export().and_then(|e| exports.backend(e.id));
                let result = match backend {
                    Some(b) => run(b.as_ref(), &action, &mut read_data),
                    None => Err(ErrorCode::Io),
                };
                session.complete(handle, result).map_err(io::Error::other)?;
            }
            let consumed = progress.consumed;
            input.consume(consumed);
            continue;
        }
        let (consumed, need) = (progress.consumed, progress.need);
        input.consume(consumed);
        if consumed > 0 {
            // Replies may have been queued (an option answered, a request refused): send them
            // before waiting for the client, who may be waiting for them.
            continue;
        }
        if let Some(need) = need {
            // About to block on the client: send what we have first.
            out.flush()?;
            if !input.fill(&mut reader, need)? {
                out.flush()?;
                return Ok(Ended::Closed);
            }
        }
    }
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
    r.map_err(|e| match (e.raw_os_error(), e.kind()) {
        (Some(errno), _) => ErrorCode::from_errno(errno),
        (None, io::ErrorKind::PermissionDenied) => ErrorCode::Perm,
        (None, io::ErrorKind::UnexpectedEof) => ErrorCode::Io,
        _ => ErrorCode::Io,
    })
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

        // Client flags (fixed newstyle, no zeroes), NBD_OPT_GO for the default export.
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
        RequestRepr {
            command: Command::Disc,
            cookie: 3,
            flags: 0,
            offset: 0,
            length: 0,
        }
        .emit(&mut req)
        .unwrap();
        msg.extend_from_slice(&req);
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
}
