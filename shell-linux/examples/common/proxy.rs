//! A TCP forwarder for tests and benchmarks of the replication link: each route forwards a
//! local port to a target port, counts the bytes it carries, and can be cut (every connection
//! shut, new ones refused) and restored — a fault the agents see as a dead link, not a command.
//! Shared by `examples/repl_bench.rs` and `tests/pair` (included with `#[path]`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The forwarder.
pub struct Proxy {
    up: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Forwards each `(listen, target)` port pair on 127.0.0.1.
    pub fn start(routes: [(u16, u16); 2]) -> Proxy {
        let up = Arc::new(AtomicBool::new(true));
        let bytes = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        for (listen, target) in routes {
            let l = TcpListener::bind(("127.0.0.1", listen)).expect("proxy port");
            let (up, bytes, conns) = (up.clone(), bytes.clone(), conns.clone());
            std::thread::spawn(move || {
                for c in l.incoming().flatten() {
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    let Ok(t) = TcpStream::connect(("127.0.0.1", target)) else {
                        continue;
                    };
                    let _ = (c.set_nodelay(true), t.set_nodelay(true));
                    let (Ok(c2), Ok(t2), Ok(c3), Ok(t3)) =
                        (c.try_clone(), t.try_clone(), c.try_clone(), t.try_clone())
                    else {
                        continue;
                    };
                    conns.lock().unwrap().extend([c2, t2]);
                    for (a, b) in [(c3, t3), (t, c)] {
                        let bytes = bytes.clone();
                        std::thread::spawn(move || pump(a, b, &bytes));
                    }
                }
            });
        }
        Proxy { up, bytes, conns }
    }

    /// Bytes carried so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pump(mut a: TcpStream, mut b: TcpStream, bytes: &AtomicU64) {
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = a.read(&mut buf) {
        if n == 0 || b.write_all(&buf[..n]).is_err() {
            break;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = (a.shutdown(Shutdown::Both), b.shutdown(Shutdown::Both));
}
