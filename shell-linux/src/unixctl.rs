//! An OVS-compatible unixctl server (ovs-sessions.md §4.1) that `ovs-appctl -t PATH COMMAND
//! [ARG...]` talks to: the sockets, threads and the command registry. What the protocol decides
//! and says (requests only, argument checks and OVS's refusal texts, the `list-commands`
//! layout, the 3.1 newline rule) is the core's [`keelson_core::unixctl`].
//!
//! Each connection is served by its own thread, one request at a time, framed by the core's
//! [`Framer`]; a message over [`MAX_MESSAGE`] bytes, bytes that are not JSON, or a message that
//! is not a request closes that connection and nothing else.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keelson_core::jsonrpc::Framer;
use keelson_core::unixctl::{self as protocol, Spec};
use nix::sys::stat::{umask, Mode};

/// Largest request accepted, in bytes; a bigger one closes the connection.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Most connections served at once; further ones wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 32;

/// What a command does with its arguments (the params, without the command name): the text to
/// reply with, or an error text.
pub type Handler = Box<dyn Fn(&[String]) -> Result<String, String> + Send + Sync>;

struct Command {
    usage: Option<String>,
    min: usize,
    max: usize,
    handler: Handler,
}

/// The command table a [`Server`] dispatches on, with `list-commands` and `version` built in.
pub struct Commands {
    table: BTreeMap<String, Command>,
    version: String,
}

impl Commands {
    /// A table holding the built-ins; `version` replies `PROGRAM (PACKAGE) VERSION`, as
    /// `ovsdb-server (Open vSwitch) 3.1.0` does.
    pub fn new(program: &str, package: &str, version: &str) -> Self {
        let mut text = Vec::new();
        let _ = protocol::write_version(program, package, version, &mut text);
        let mut c = Commands {
            table: BTreeMap::new(),
            version: String::from_utf8_lossy(&text).into_owned(),
        };
        // Both are answered by `dispatch` (they need the table); these entries give them their
        // place in `list-commands` and their argument counts.
        for b in protocol::BUILT_IN {
            c.register(b.name, b.usage, b.min, b.max, |_| Ok(String::new()));
        }
        c
    }

    /// Adds `name`, taking `min..=max` arguments. A command without a `usage` works but is not
    /// listed by `list-commands`. A second registration of a name is ignored (OVS accepts one
    /// only with the same callback, which a closure cannot be compared on).
    pub fn register(
        &mut self,
        name: &str,
        usage: Option<&str>,
        min: usize,
        max: usize,
        handler: impl Fn(&[String]) -> Result<String, String> + Send + Sync + 'static,
    ) {
        self.table.entry(name.to_owned()).or_insert(Command {
            usage: usage.map(str::to_owned),
            min,
            max,
            handler: Box::new(handler),
        });
    }

    fn specs(&self) -> impl Iterator<Item = Spec<'_>> + Clone {
        self.table.iter().map(|(name, c)| Spec {
            name,
            usage: c.usage.as_deref(),
            min: c.min,
            max: c.max,
        })
    }

    /// The `list-commands` text.
    pub fn list(&self) -> String {
        let mut out = Vec::new();
        let _ = protocol::write_list(self.specs(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Answers a request: the table's checks (OVS's texts), then the built-in or the handler.
    fn dispatch(&self, req: &protocol::Request<'_>) -> Result<String, String> {
        let method: String = req.method.chars().collect();
        let spec = self.specs().find(|s| s.name == method);
        protocol::check(spec.as_ref(), req).map_err(|r| r.to_string())?;
        let args: Vec<String> = req
            .params
            .iter()
            .filter_map(|v| v.as_str().map(|s| s.chars().collect()))
            .collect();
        match method.as_str() {
            "list-commands" => Ok(self.list()),
            "version" => Ok(self.version.clone()),
            _ => self
                .table
                .get(&method)
                .map_or_else(|| Ok(String::new()), |c| (c.handler)(&args)),
        }
    }
}

/// Answers one framed message; `None` when the connection must close (not a request).
fn answer(commands: &Commands, frame: &[u8]) -> Option<Vec<u8>> {
    let req = match protocol::request(frame) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("unixctl: {e}");
            return None;
        }
    };
    let (ok, text) = match commands.dispatch(&req) {
        Ok(t) => (true, t),
        Err(t) => (false, t),
    };
    let mut out = Vec::new();
    // A Vec never overflows.
    let _ = protocol::write_reply(ok, &text, &req.id, &mut out);
    Some(out)
}

/// Serves one connection until the peer closes it, it misbehaves, or the server stops.
fn serve(commands: &Commands, mut stream: UnixStream) {
    let mut framer = Framer::new(Vec::new(), MAX_MESSAGE);
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let fed = match framer.feed(rest) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("unixctl: {e}");
                    return;
                }
            };
            rest = &rest[fed.consumed..];
            if !fed.complete {
                continue;
            }
            let Some(reply) = framer.frame().and_then(|f| answer(commands, f)) else {
                return;
            };
            if stream.write_all(&reply).is_err() {
                return;
            }
        }
    }
}

struct Inner {
    commands: Commands,
    stop: AtomicBool,
    active: AtomicUsize,
    /// Clones of the open connections, to end their reads on [`Server::stop`].
    conns: Mutex<Vec<(u64, UnixStream)>>,
}

/// A running unixctl server; [`stop`](Server::stop) (or dropping it) closes it and removes the
/// socket file.
pub struct Server {
    path: PathBuf,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Binds `path` with mode 0700 (replacing a stale socket file there) and serves `commands`
    /// on it from a background thread. The mode is set through the process umask while binding,
    /// so start the server before other threads create files.
    pub fn start(path: &Path, commands: Commands) -> io::Result<Server> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).create(dir)?;
            }
        }
        let bind = || {
            let old = umask(Mode::from_bits_truncate(0o077));
            let r = UnixListener::bind(path);
            umask(old);
            r
        };
        let listener = match bind() {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                // A socket nobody answers on is a leftover; a live one is not ours to take.
                if UnixStream::connect(path).is_ok() {
                    return Err(e);
                }
                std::fs::remove_file(path)?;
                bind()?
            }
            Err(e) => return Err(e),
        };
        let inner = Arc::new(Inner {
            commands,
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let sh = inner.clone();
        let acceptor = std::thread::Builder::new()
            .name("unixctl".into())
            .spawn(move || accept_loop(&sh, &listener))?;
        Ok(Server {
            path: path.to_path_buf(),
            inner,
            acceptor: Some(acceptor),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, lets requests being answered finish (bounded), closes every connection
    /// and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.inner.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.path);
        let workers = acceptor.join().unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        // Ending the reads lets a thread that is mid-request still write its reply.
        for (_, s) in self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for h in workers {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(inner: &Arc<Inner>, listener: &UnixListener) -> Vec<JoinHandle<()>> {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    loop {
        workers.retain(|h| !h.is_finished());
        while inner.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS
            && !inner.stop.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("unixctl accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                if inner.stop.load(Ordering::SeqCst) {
                    return workers;
                }
                continue;
            }
        };
        if inner.stop.load(Ordering::SeqCst) {
            return workers;
        }
        next_id += 1;
        let id = next_id;
        if let Ok(c) = stream.try_clone() {
            inner
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((id, c));
        }
        inner.active.fetch_add(1, Ordering::SeqCst);
        let sh = inner.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("unixctl-{id}"))
            .spawn(move || {
                serve(&sh.commands, stream);
                sh.conns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(i, _)| *i != id);
                sh.active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(h) => workers.push(h),
            Err(e) => {
                inner.active.fetch_sub(1, Ordering::SeqCst);
                inner
                    .conns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(i, _)| *i != id);
                tracing::error!("cannot start a unixctl thread: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Commands {
        let mut c = Commands::new("prog", "Pkg", "1.2.3");
        c.register("echo-args", Some("A [B]"), 1, 2, |a| Ok(a.join(" ")));
        c.register("hidden", None, 0, 0, |_| Err("nope".into()));
        c
    }

    fn reply(c: &Commands, req: &str) -> Option<String> {
        answer(c, req.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn list_commands_pads_and_hides() {
        assert_eq!(
            table().list(),
            "The available commands are:\n  echo-args               A [B]\n  \
             list-commands           \n  version                 \n"
        );
    }

    #[test]
    fn replies_and_errors() {
        let c = table();
        assert_eq!(
            reply(&c, r#"{"id":0,"method":"version","params":[]}"#).unwrap(),
            r#"{"result":"prog (Pkg) 1.2.3\n","error":null,"id":0}"#
        );
        assert_eq!(
            reply(&c, r#"{"id":7,"method":"echo-args","params":["a","b"]}"#).unwrap(),
            r#"{"result":"a b\n","error":null,"id":7}"#
        );
        assert_eq!(
            reply(&c, r#"{"id":0,"method":"hidden","params":[]}"#).unwrap(),
            r#"{"error":"nope\n","id":0}"#
        );
        assert_eq!(
            reply(&c, r#"{"id":0,"method":"echo","params":[]}"#).unwrap(),
            r#"{"error":"\"echo\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n","id":0}"#
        );
        assert_eq!(
            reply(&c, r#"{"id":0,"method":"echo-args","params":[]}"#).unwrap(),
            r#"{"error":"\"echo-args\" command requires at least 1 arguments\n","id":0}"#
        );
        assert_eq!(
            reply(
                &c,
                r#"{"id":0,"method":"echo-args","params":["1","2","3"]}"#
            )
            .unwrap(),
            r#"{"error":"\"echo-args\" command takes at most 2 arguments\n","id":0}"#
        );
        assert_eq!(
            reply(&c, r#"{"id":0,"method":"echo-args","params":[1]}"#).unwrap(),
            r#"{"error":"\"echo-args\" command has non-string argument\n","id":0}"#
        );
        assert!(reply(&c, r#"{"id":null,"method":"version","params":[]}"#).is_none());
        assert!(reply(&c, r#"{"id":0,"result":"x","error":null}"#).is_none());
    }
}
