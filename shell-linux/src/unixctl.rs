//! An OVS-compatible unixctl server (ovs-sessions.md §4.1): JSON-RPC over a UNIX socket, spoken
//! by `ovs-appctl -t PATH COMMAND [ARG...]`.
//!
//! - Each connection is a plain JSON-RPC connection (no session, no `echo` auto-reply), served
//!   by its own thread, one request at a time. Messages are framed and parsed with the core's
//!   codec ([`Framer`], [`Message`]); a message over [`MAX_MESSAGE`] bytes, bytes that are not
//!   JSON, or a message that is not a request closes that connection and nothing else.
//! - Dispatch checks the command table and replies with OVS's texts verbatim: `"M" is not a
//!   valid command (use "list-commands" to see a list of valid commands)`, `"M" command requires
//!   at least N arguments`, `"M" command takes at most N arguments`, `"M" command has non-string
//!   argument`.
//! - Replies: success `{"result":"TEXT","error":null,"id":ID}`, failure `{"error":"TEXT","id":ID}`
//!   (the core's [`write_reply`] / [`write_error`]; OVS 3.1 happens to put `id` first, which no
//!   JSON reader notices).
//! - Built in: `list-commands` (the header line, then every command that has a usage string,
//!   sorted by name, as two spaces, the name left-justified to 23 columns, a space, the usage)
//!   and `version` (`PROGRAM (PACKAGE) VERSION`).
//!
//! **Newline rule: OVS 3.1.** The server appends `"\n"` to any non-empty result or error text
//! that lacks one; an empty text stays `""`. A 3.1 `ovs-appctl` prints the text exactly as
//! received, so this is the only rule under which its output ends in a newline; a 3.4+ client
//! adds a newline only when one is missing, so it prints the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keelson_core::jsonrpc::{write_error, write_reply, Framer, Message, Value};
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
        let mut c = Commands {
            table: BTreeMap::new(),
            version: format!("{program} ({package}) {version}"),
        };
        // Both are dispatched specially (they need the table); these entries give them their
        // place in `list-commands` and their argument counts.
        for name in ["list-commands", "version"] {
            c.register(name, Some(""), 0, 0, |_| Ok(String::new()));
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

    /// The `list-commands` text.
    pub fn list(&self) -> String {
        let mut s = String::from("The available commands are:\n");
        for (name, c) in &self.table {
            if let Some(u) = &c.usage {
                s.push_str(&format!("  {name:<23} {u}\n"));
            }
        }
        s
    }

    /// Runs `method` with `params` (`None` for a param that is not a string), with OVS's checks
    /// and texts, before the newline rule.
    pub fn dispatch(&self, method: &str, params: &[Option<String>]) -> Result<String, String> {
        let Some(c) = self.table.get(method) else {
            return Err(format!(
                "\"{method}\" is not a valid command (use \"list-commands\" to see a list of \
                 valid commands)"
            ));
        };
        if params.len() < c.min {
            return Err(format!(
                "\"{method}\" command requires at least {} arguments",
                c.min
            ));
        }
        if params.len() > c.max {
            return Err(format!(
                "\"{method}\" command takes at most {} arguments",
                c.max
            ));
        }
        let Some(args) = params.iter().cloned().collect::<Option<Vec<String>>>() else {
            return Err(format!("\"{method}\" command has non-string argument"));
        };
        match method {
            "list-commands" => Ok(self.list()),
            "version" => Ok(self.version.clone()),
            _ => (c.handler)(&args),
        }
    }
}

/// OVS 3.1's rule: a non-empty text gets a trailing newline if it lacks one.
fn terminated(mut s: String) -> String {
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Answers one framed message; `None` when the connection must close (not a request).
fn answer(commands: &Commands, frame: &[u8]) -> Option<Vec<u8>> {
    let msg = match Message::parse(frame) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("unixctl: {e}");
            return None;
        }
    };
    let Message::Request { method, params, id } = msg else {
        tracing::warn!("unixctl: received unexpected {} message", msg.kind().name());
        return None;
    };
    let method: String = method.chars().collect();
    let params: Vec<Option<String>> = params
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(s.chars().collect()),
            _ => None,
        })
        .collect();
    let reply = commands.dispatch(&method, &params);
    let mut out = Vec::new();
    // A Vec never overflows.
    let _ = match reply {
        Ok(text) => write_reply(&terminated(text).as_str(), &id, &mut out),
        Err(text) => write_error(&terminated(text).as_str(), &id, &mut out),
    };
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

    #[test]
    fn empty_stays_empty() {
        assert_eq!(terminated(String::new()), "");
        assert_eq!(terminated("a\n".into()), "a\n");
        assert_eq!(terminated("a".into()), "a\n");
    }
}
