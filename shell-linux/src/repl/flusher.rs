//! The resource's flush thread: `fdatasync` of the backing file off the resource thread, so
//! that while the disk works the resource thread keeps reading the peer's next epoch into its
//! buffer (it does not apply it: a barrier's flush ends before any later write starts, as DRBD's
//! receiver does it), and keeps answering pings and acks.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use keelson_core::repl::node::IoToken;
use mio::Waker;

/// Flushes in flight, answered in order.
pub struct Flusher {
    tx: Option<Sender<IoToken>>,
    done: Receiver<(IoToken, bool)>,
    in_flight: usize,
}

impl Flusher {
    /// A thread that flushes `file` and wakes `waker` after each flush.
    pub fn start(file: File, waker: Arc<Waker>, name: &str) -> io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<IoToken>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("flush-{name}"))
            .spawn(move || {
                for token in rx {
                    let ok = file.sync_data().is_ok();
                    if done_tx.send((token, ok)).is_err() {
                        break;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Flusher {
            tx: Some(tx),
            done,
            in_flight: 0,
        })
    }

    /// Starts a flush; false if the thread is gone (the flush then failed).
    pub fn start_flush(&mut self, token: IoToken) -> bool {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(token).is_ok());
        if sent {
            self.in_flight += 1;
        }
        sent
    }

    /// Whether a flush is running.
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }

    /// The next finished flush.
    pub fn poll(&mut self) -> Option<(IoToken, bool)> {
        match self.done.try_recv() {
            Ok(d) => {
                self.in_flight -= 1;
                Some(d)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                // The thread died (it cannot panic on its own; a failed spawn is caught at
                // start): nothing more will come.
                self.in_flight = 0;
                None
            }
        }
    }
}
