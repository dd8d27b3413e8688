//! Request-daemon benchmark: `hello` round trips against the real lvmpolld and against keelsond
//! standing in for it (`--protocol lvmpolld --protocol-version 1`), side by side in one run.
//!
//! ```text
//! cargo build --release -p keelson-linux --bins
//! cargo run --release -p keelson-linux --example daemon_bench [-- --secs S] [--rounds R]
//!     [--clients 1,16] [--mode persistent|multiplexed|per-connection] [--keelsond PATH]
//!     [--lvmpolld PATH] [--also LABEL=KEELSOND_PATH]... [--pause S]
//! ```
//!
//! - Servers: `lvmpolld -f -s SOCK -p PIDFILE` (no `-l`: it logs errors to syslog only) and
//!   `keelsond --socket SOCK --protocol lvmpolld --protocol-version 1` (default logging, `info`,
//!   which logs nothing per request), stdin/stdout/stderr on /dev/null, sockets in a temporary
//!   directory, SIGTERM on exit (and PR_SET_PDEATHSIG, so none outlives the program).
//!   keelsond is `--keelsond PATH`, else `$KEELSOND`, else the `keelsond` next to this program or
//!   in one of its parent directories (`target/release/keelsond` for
//!   `target/release/examples/daemon_bench`). `cargo run --example` does not build binaries, so
//!   build them first; the program warns when keelsond is older than a source file of the crate
//!   or the core. `--also LABEL=PATH` adds more keelsond builds (A/B of a change).
//! - Workloads, each for `--secs` (default 3) after a 0.3 s warm-up, with 1 and 16 clients
//!   (threads of this process, all released at once by a barrier, except in `multiplexed`):
//!   - `persistent`: each client keeps one connection and does hello round trips on it
//!     (write `request = "hello"\n\n##\n`, read up to the terminator, check the bytes);
//!   - `multiplexed`: the same round trips on the same number of connections, all driven by one
//!     client thread with epoll (each connection has one hello in flight at a time). Blocking
//!     client threads cost about as much CPU per round trip as the server does, and on two
//!     cores they share the CPUs with it; this mode makes the client cheap, so the figures show
//!     what the server can do rather than what the client threads allow;
//!   - `per-connection`: each round trip is connect + hello + close, the way every lvm command
//!     talks to lvmpolld.
//! - Figures: round trips per second (all clients, over the wall time up to the last completed
//!   round trip), p50/p99 of the per-round-trip latency (all clients' samples), CPU time per
//!   round trip of the server (utime + stime from `/proc/PID/stat`, all threads) and of the
//!   clients (`getrusage`), and context switches per round trip (server: `/proc/PID/task/*/status`
//!   of the live threads, persistent mode only; clients: `getrusage`). With `--rounds R`
//!   (default 3) every scenario runs R times, the servers rotating which goes first; the table
//!   shows medians over the rounds.
//! - lvmpolld 2.03.16 (and lvm2 HEAD) stops by itself under connect-per-request load: its reaper
//!   SIGTERMs finished client threads, and one that has set `active = 0` but not yet exited runs
//!   the process's shutdown handler. A server that exits during a run is started again; the run's
//!   figures cover the time it was up, and the table marks it. A run where it died during the
//!   warm-up is repeated.
//! - The clients run on the same machine as the servers: on a 2-core VM they compete with them
//!   for CPU, equally for every server.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

const HELLO: &[u8] = b"request = \"hello\"\n\n##\n";
const HELLO_REPLY: &[u8] = b"response = \"OK\"\nprotocol = \"lvmpolld\"\nversion = 1\n\n##\n";

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args {
    secs: f64,
    rounds: usize,
    clients: Vec<usize>,
    keelsond: Option<PathBuf>,
    lvmpolld: Option<PathBuf>,
    modes: Vec<Mode>,
    /// More keelsond builds to compare (`--also LABEL=PATH`).
    also: Vec<(String, PathBuf)>,
    /// Pause before measuring (to attach a profiler to the printed pids).
    pause: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: daemon_bench [--secs S] [--rounds R] [--clients N,N...] \
         [--mode persistent|multiplexed|per-connection] [--keelsond PATH] [--lvmpolld PATH] [--also LABEL=KEELSOND] [--pause S]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        secs: 3.0,
        rounds: 3,
        clients: vec![1, 16],
        keelsond: None,
        lvmpolld: None,
        modes: vec![Mode::Persistent, Mode::Multiplexed, Mode::PerConnection],
        also: Vec::new(),
        pause: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--secs" => a.secs = val().parse().unwrap_or_else(|_| usage()),
            "--rounds" => a.rounds = val().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--clients" => {
                a.clients = val()
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().unwrap_or_else(|_| usage()).max(1))
                    .collect()
            }
            "--keelsond" => a.keelsond = Some(val().into()),
            "--lvmpolld" => a.lvmpolld = Some(val().into()),
            "--mode" => {
                a.modes = vec![match val().as_str() {
                    "persistent" => Mode::Persistent,
                    "per-connection" => Mode::PerConnection,
                    "multiplexed" => Mode::Multiplexed,
                    _ => usage(),
                }]
            }
            "--also" => {
                let v = val();
                let (label, path) = v.split_once('=').unwrap_or_else(|| usage());
                a.also.push((label.to_string(), path.into()));
            }
            "--pause" => a.pause = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    a
}

// ---------------------------------------------------------------------------------------------
// Finding the programs

fn fail(msg: &str) -> ! {
    eprintln!("daemon_bench: {msg}");
    std::process::exit(1)
}

fn find_lvmpolld(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let fixed = PathBuf::from("/usr/sbin/lvmpolld");
    if fixed.is_file() {
        return fixed;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("lvmpolld"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| fail("lvmpolld not found (/usr/sbin/lvmpolld or PATH); install lvm2"))
}

fn find_keelsond(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given.or_else(|| std::env::var_os("KEELSOND").map(PathBuf::from)) {
        return p;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    exe.ancestors()
        .skip(1)
        .map(|d| d.join("keelsond"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            fail(&format!(
                "no keelsond next to {} or in its parent directories; build it first:\n  \
                 cargo build --release -p keelson-linux --bins\n(or pass --keelsond PATH)",
                exe.display()
            ))
        })
}

/// The newest source file keelsond is built from, if it is newer than `bin`.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![crate_dir.join("src"), crate_dir.join("../core/src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, p));
                }
            }
        }
    }
    newest.filter(|(t, _)| *t > built).map(|(_, p)| p)
}

// ---------------------------------------------------------------------------------------------
// Servers

struct Server {
    name: String,
    bin: PathBuf,
    make: Box<dyn Fn() -> Command>,
    child: Child,
    socket: PathBuf,
    /// How many times it exited by itself and was started again.
    restarts: usize,
}

fn spawn(make: &dyn Fn() -> Command, socket: &Path) -> Child {
    let mut cmd = make();
    // SAFETY: prctl is async-signal-safe; it only asks for SIGTERM when this (main) thread
    // exits, so a benchmark that stops early leaves no server behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("starting {cmd:?}: {e}")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(socket).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            fail(&format!("{cmd:?} exited with {st}"));
        }
        if Instant::now() > deadline {
            fail(&format!("{cmd:?} not listening after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

impl Server {
    fn start(
        name: String,
        bin: PathBuf,
        make: Box<dyn Fn() -> Command>,
        socket: PathBuf,
    ) -> Server {
        let child = spawn(&*make, &socket);
        Server {
            name,
            bin,
            make,
            child,
            socket,
            restarts: 0,
        }
    }

    /// None while running; the exit status once it has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Starts it again after it exited by itself.
    fn restart(&mut self) {
        self.child = spawn(&*self.make, &self.socket);
        self.restarts += 1;
    }

    /// utime + stime of the whole process (all threads), in seconds.
    fn cpu(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        ticks as f64 / hz as f64
    }

    /// Voluntary + involuntary context switches of the threads alive now.
    fn switches(&self) -> u64 {
        let mut total = 0;
        let dir = format!("/proc/{}/task", self.child.id());
        for t in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in status.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    total += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        total
    }

    fn threads(&self) -> usize {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        keelson_linux::process::terminate(&mut self.child, Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Persistent,
    PerConnection,
    Multiplexed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Persistent => "persistent",
            Mode::PerConnection => "per-connection",
            Mode::Multiplexed => "multiplexed",
        }
    }
}

/// One hello round trip on `s`, the reply checked byte for byte.
fn hello(s: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<()> {
    s.write_all(HELLO)?;
    let mut have = 0;
    while !buf[..have].ends_with(b"\n##\n") {
        let n = s.read(&mut buf[have..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
    }
    if &buf[..have] != HELLO_REPLY {
        fail(&format!(
            "unexpected reply {:?}",
            buf[..have].escape_ascii().to_string()
        ));
    }
    Ok(())
}

/// connect + hello + close.
fn hello_once(socket: &Path, buf: &mut [u8]) -> std::io::Result<()> {
    let mut s = UnixStream::connect(socket)?;
    hello(&mut s, buf)
}

/// One connection of the multiplexed client: at most one hello in flight.
struct Muxed {
    stream: UnixStream,
    have: usize,
    buf: [u8; 256],
    sent: Instant,
    busy: bool,
}

/// Hello round trips on every connection at once, driven by one thread with epoll, until
/// `until`; latencies go to `lat`. Returns when no request is in flight any more.
fn mux_round_trips(
    conns: &mut [Muxed],
    poll: &mut mio::Poll,
    until: Instant,
    mut lat: Option<&mut Vec<u32>>,
) -> Result<Instant, String> {
    let mut events = mio::Events::with_capacity(conns.len().max(1));
    let mut last = Instant::now();
    for c in conns.iter_mut() {
        (&c.stream).write_all(HELLO).map_err(|e| e.to_string())?;
        c.sent = Instant::now();
        c.busy = true;
    }
    let mut busy = conns.len();
    while busy > 0 {
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            return Err("no reply for 10 s".into());
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            loop {
                match (&c.stream).read(&mut c.buf[c.have..]) {
                    Ok(0) => return Err("connection closed".into()),
                    Ok(n) => c.have += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
                }
                if c.buf[..c.have].ends_with(b"\n##\n") {
                    if &c.buf[..c.have] != HELLO_REPLY {
                        fail(&format!(
                            "unexpected reply {:?}",
                            c.buf[..c.have].escape_ascii().to_string()
                        ));
                    }
                    c.have = 0;
                    last = Instant::now();
                    if let Some(l) = lat.as_deref_mut() {
                        l.push((last - c.sent).as_nanos().min(u128::from(u32::MAX)) as u32);
                    }
                    if last < until {
                        (&c.stream).write_all(HELLO).map_err(|e| e.to_string())?;
                        c.sent = Instant::now();
                    } else if c.busy {
                        c.busy = false;
                        busy -= 1;
                    }
                }
                if c.have == c.buf.len() {
                    return Err("reply too long".into());
                }
            }
        }
    }
    Ok(last)
}

/// The multiplexed client: `clients` connections, one thread.
fn mux_client(
    socket: &Path,
    clients: usize,
    dur: Duration,
    start: &Barrier,
    done: &Barrier,
    close: &Barrier,
) -> (Vec<u32>, Instant, Option<String>) {
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 22);
    let setup = || -> Result<(Vec<Muxed>, mio::Poll), String> {
        let poll = mio::Poll::new().map_err(|e| e.to_string())?;
        let mut conns = Vec::new();
        for i in 0..clients {
            let stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
            stream.set_nonblocking(true).map_err(|e| e.to_string())?;
            poll.registry()
                .register(
                    &mut mio::unix::SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&stream)),
                    mio::Token(i),
                    mio::Interest::READABLE,
                )
                .map_err(|e| e.to_string())?;
            conns.push(Muxed {
                stream,
                have: 0,
                buf: [0; 256],
                sent: Instant::now(),
                busy: false,
            });
        }
        Ok((conns, poll))
    };
    let mut state = setup();
    let mut error = None;
    if let Ok((conns, poll)) = &mut state {
        let warm = Instant::now() + Duration::from_millis(300);
        if let Err(e) = mux_round_trips(conns, poll, warm, None) {
            error = Some(format!("warm-up: {e}"));
        }
    }
    start.wait();
    let mut last = Instant::now();
    match (&mut state, &error) {
        (Ok((conns, poll)), None) => {
            match mux_round_trips(conns, poll, Instant::now() + dur, Some(&mut lat)) {
                Ok(t) => last = t,
                Err(e) => error = Some(e),
            }
        }
        (Err(e), _) => error = Some(e.clone()),
        _ => {}
    }
    done.wait();
    close.wait();
    drop(state);
    (lat, last, error)
}

struct Run {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu_us: f64,
    client_cpu_us: f64,
    /// Context switches per round trip: the server's (persistent mode only: the threads of
    /// finished connections are not counted) and the clients'.
    server_cs: f64,
    client_cs: f64,
    /// Server threads while the clients were connected (persistent mode).
    threads: usize,
    /// Round trips completed.
    count: usize,
    /// Seconds from the start to the last completed round trip.
    wall: f64,
    /// The first client error, if any (a client stops at its first error).
    error: Option<String>,
    /// The server's exit status, when it exited during the run.
    died: Option<String>,
}

/// Context switches (voluntary + involuntary) of this process, finished threads included.
fn self_switches() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    (ru.ru_nvcsw + ru.ru_nivcsw) as f64
}

/// CPU seconds (user + system) of this process: the client threads.
fn self_cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn measure(server: &mut Server, mode: Mode, clients: usize, secs: f64) -> Run {
    // start: all clients warmed up; done: all stopped measuring (connections still open);
    // close: the main thread has read the server's figures.
    let threads = if mode == Mode::Multiplexed {
        1
    } else {
        clients
    };
    let [start, done, close] = [(); 3].map(|_| Arc::new(Barrier::new(threads + 1)));
    let dur = Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let socket = server.socket.clone();
            let (start, done, close) = (start.clone(), done.clone(), close.clone());
            std::thread::spawn(move || {
                if mode == Mode::Multiplexed {
                    return mux_client(&socket, clients, dur, &start, &done, &close);
                }
                let mut buf = [0u8; 256];
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
                let mut error = None;
                let mut conn = match mode {
                    Mode::Persistent | Mode::Multiplexed => match UnixStream::connect(&socket) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            error = Some(format!("connect: {e}"));
                            None
                        }
                    },
                    Mode::PerConnection => None,
                };
                let mut once = |conn: &mut Option<UnixStream>| match (mode, conn) {
                    (Mode::Persistent | Mode::Multiplexed, Some(c)) => hello(c, &mut buf),
                    (Mode::Persistent | Mode::Multiplexed, None) => {
                        Err(std::io::ErrorKind::NotConnected.into())
                    }
                    (Mode::PerConnection, _) => hello_once(&socket, &mut buf),
                };
                // Warm-up: connections and server threads exist, caches are warm.
                let warm = Instant::now() + Duration::from_millis(300);
                while error.is_none() && Instant::now() < warm {
                    if let Err(e) = once(&mut conn) {
                        error = Some(format!("warm-up: {e}"));
                    }
                }
                start.wait();
                let t_end = Instant::now() + dur;
                let mut last = Instant::now();
                while error.is_none() {
                    let t0 = Instant::now();
                    if t0 >= t_end {
                        break;
                    }
                    if let Err(e) = once(&mut conn) {
                        error = Some(e.to_string());
                        break;
                    }
                    last = Instant::now();
                    lat.push((last - t0).as_nanos().min(u128::from(u32::MAX)) as u32);
                }
                done.wait();
                close.wait();
                drop(conn);
                (lat, last, error)
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let (scpu0, ccpu0) = (server.cpu(), self_cpu());
    let (scs0, ccs0) = (server.switches(), self_switches());
    done.wait();
    let (scpu1, ccpu1) = (server.cpu(), self_cpu());
    let (scs1, ccs1) = (server.switches(), self_switches());
    let threads = server.threads();
    close.wait();
    let mut all: Vec<u32> = Vec::new();
    let mut last = t0;
    let mut error = None;
    for h in handles {
        let (lat, finished, e) = h.join().expect("client thread");
        all.extend_from_slice(&lat);
        last = last.max(finished);
        error = error.or(e);
    }
    // A server that dies takes a moment to be reaped.
    std::thread::sleep(Duration::from_millis(50));
    let died = server.exited().map(|st| st.to_string());
    let wall = last.duration_since(t0).as_secs_f64();
    all.sort_unstable();
    let pct = |q: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    let n = all.len() as f64;
    Run {
        rate: n / wall.max(1e-9),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        server_cpu_us: (scpu1 - scpu0) * 1e6 / n.max(1.0),
        client_cpu_us: (ccpu1 - ccpu0) * 1e6 / n.max(1.0),
        server_cs: match mode {
            Mode::Persistent | Mode::Multiplexed => scs1.saturating_sub(scs0) as f64 / n.max(1.0),
            Mode::PerConnection => f64::NAN,
        },
        client_cs: (ccs1 - ccs0) / n.max(1.0),
        threads,
        count: all.len(),
        wall,
        error,
        died,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Main

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keelsond_cmd(bin: PathBuf, sock: PathBuf) -> Box<dyn Fn() -> Command> {
    Box::new(move || {
        let mut cmd = Command::new(&bin);
        cmd.arg("--socket")
            .arg(&sock)
            .args(["--protocol", "lvmpolld", "--protocol-version", "1"]);
        cmd
    })
}

/// Runs one scenario on one server; a server that exits during the warm-up is started again
/// and the run repeated (at most 5 times).
fn measure_retrying(srv: &mut Server, mode: Mode, clients: usize, secs: f64) -> Run {
    for attempt in 1.. {
        let r = measure(srv, mode, clients, secs);
        if let Some(st) = &r.died {
            eprintln!(
                "    {} EXITED ({st}) after {} round trips in {:.2} s; starting it again",
                srv.name, r.count, r.wall
            );
            srv.restart();
            if r.count == 0 && attempt < 5 {
                continue;
            }
        } else if let Some(e) = &r.error {
            fail(&format!(
                "{}: client error ({e}) but still running",
                srv.name
            ));
        }
        return r;
    }
    unreachable!()
}

fn main() {
    let args = args();
    let lvmpolld_bin = find_lvmpolld(args.lvmpolld);
    let keelsond_bin = find_keelsond(args.keelsond);
    if let Some(src) = newer_source(&keelsond_bin) {
        eprintln!(
            "warning: {} is older than {}; rebuild it: cargo build --release -p keelson-linux --bins",
            keelsond_bin.display(),
            src.display()
        );
    }
    let tmp =
        TempDir(std::env::temp_dir().join(format!("keelson-daemon-bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).unwrap_or_else(|e| fail(&format!("{}: {e}", tmp.0.display())));

    let lp_sock = tmp.0.join("lvmpolld.socket");
    let lp_pid = tmp.0.join("lvmpolld.pid");
    let (bin, sock) = (lvmpolld_bin.clone(), lp_sock.clone());
    let mut servers = vec![Server::start(
        "lvmpolld".into(),
        lvmpolld_bin.clone(),
        Box::new(move || {
            let mut cmd = Command::new(&bin);
            cmd.arg("-f").arg("-s").arg(&sock).arg("-p").arg(&lp_pid);
            cmd
        }),
        lp_sock,
    )];
    let mut keelsonds = vec![("keelsond".to_string(), keelsond_bin)];
    keelsonds.extend(args.also);
    for (i, (label, bin)) in keelsonds.into_iter().enumerate() {
        let sock = tmp.0.join(format!("keelsond-{i}.socket"));
        let make = keelsond_cmd(bin.clone(), sock.clone());
        servers.push(Server::start(label, bin, make, sock));
    }

    for s in &servers {
        println!("{}: {} (pid {})", s.name, s.bin.display(), s.child.id());
    }
    println!(
        "{} s per run, {} round(s), clients {:?}; load average at start: {}",
        args.secs,
        args.rounds,
        args.clients,
        loadavg()
    );
    if args.pause > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(args.pause));
    }

    let n = servers.len();
    let mut results: Vec<(Mode, usize, Vec<Vec<Run>>)> = Vec::new();
    for &mode in &args.modes {
        // One connection multiplexed is the persistent mode with epoll in the way.
        for &c in args
            .clients
            .iter()
            .filter(|&&c| mode != Mode::Multiplexed || c > 1)
        {
            results.push((mode, c, (0..n).map(|_| Vec::new()).collect()));
        }
    }
    for round in 0..args.rounds {
        for (mode, c, runs) in &mut results {
            // Rotate which server goes first.
            for k in 0..n {
                let i = (k + round) % n;
                let srv = &mut servers[i];
                let r = measure_retrying(srv, *mode, *c, args.secs);
                eprintln!(
                    "round {} {:<14} {:>2} clients {:<10} {:>8.0} rt/s  p50 {:>7.1} us  p99 {:>8.1} us  \
                     cpu/rt server {:>5.1} us client {:>5.1} us  switches/rt server {} client {:.2}  \
                     {} threads  load {}",
                    round + 1,
                    mode.name(),
                    c,
                    srv.name,
                    r.rate,
                    r.p50_us,
                    r.p99_us,
                    r.server_cpu_us,
                    r.client_cpu_us,
                    if r.server_cs.is_nan() {
                        "-".to_string()
                    } else {
                        format!("{:.2}", r.server_cs)
                    },
                    r.client_cs,
                    r.threads,
                    loadavg()
                );
                runs[i].push(r);
            }
        }
    }

    println!();
    println!(
        "| mode | clients | server | round trips/s | p50 µs | p99 µs | server CPU µs/rt | \
         client CPU µs/rt | switches/rt server, clients | ÷ lvmpolld |"
    );
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut goal = Vec::new();
    let mut notes = Vec::new();
    for (mode, c, runs) in &results {
        let med = |i: usize, f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
        let base = med(0, |r| r.rate);
        for (i, s) in servers.iter().enumerate() {
            let rate = med(i, |r| r.rate);
            let ratio = if i > 0 {
                format!("**{:.2}×**", rate / base)
            } else {
                String::new()
            };
            let died: Vec<String> = runs[i]
                .iter()
                .filter(|r| r.died.is_some())
                .map(|r| r.count.to_string())
                .collect();
            let mark = if died.is_empty() {
                ""
            } else {
                notes.push(format!(
                    "{} {} client(s), {}: exited by itself in {} of {} runs, after {} round \
                     trips; rates cover the time it was up",
                    mode.name(),
                    c,
                    s.name,
                    died.len(),
                    runs[i].len(),
                    died.join(", ")
                ));
                " (†)"
            };
            println!(
                "| {} | {} | {}{} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {}{:.2} | {} |",
                mode.name(),
                c,
                s.name,
                mark,
                rate,
                med(i, |r| r.p50_us),
                med(i, |r| r.p99_us),
                med(i, |r| r.server_cpu_us),
                med(i, |r| r.client_cpu_us),
                match med(i, |r| r.server_cs) {
                    x if x.is_nan() => "–, ".to_string(),
                    x => format!("{x:.2}, "),
                },
                med(i, |r| r.client_cs),
                ratio
            );
        }
        if *mode != Mode::PerConnection && *c == 16 {
            goal.push((mode.name(), med(1, |r| r.rate) / base));
        }
    }
    println!();
    for n in &notes {
        println!("(†) {n}");
    }
    for s in &servers {
        if s.restarts > 0 {
            println!("{} was started again {} time(s)", s.name, s.restarts);
        }
    }
    println!("load average at end: {}", loadavg());
    for (mode, r) in goal {
        println!(
            "goal (keelsond >= 2x lvmpolld, 16 clients, {mode}): {:.2}x, {}",
            r,
            if r >= 2.0 { "met" } else { "NOT met" }
        );
    }
}
