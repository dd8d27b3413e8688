//! Two real keelsond agents on loopback replicating one resource, `r0`: their configuration,
//! `keelctl` against either, NBD writes with `qemu-io`, and a TCP proxy between them that can
//! cut the link (`examples/common/proxy.rs`).
//!
//! Every wait is a bounded poll; ports are per test so tests run in parallel.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{s, scratch, Daemon, KEELCTL};

#[path = "../../examples/common/proxy.rs"]
mod proxy;
pub use proxy::Proxy;

/// How long a pair may take to connect, sync or settle.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Device size of the test resources.
pub const SIZE: u64 = 16 << 20;

/// The names of the two nodes.
pub const NODES: [&str; 2] = ["alpha", "beta"];

/// Settings that differ between tests.
#[derive(Clone)]
pub struct Setup {
    pub protocol: &'static str,
    pub secrets: [&'static str; 2],
    pub resync_rate: &'static str,
    /// Put a cuttable proxy between the two.
    pub proxy: bool,
    pub size: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            protocol: "C",
            secrets: ["pair-secret"; 2],
            resync_rate: "0",
            proxy: false,
            size: SIZE,
        }
    }
}

/// The pair: its directory, ports, daemons and (optionally) the proxy.
pub struct Pair {
    pub dir: PathBuf,
    pub setup: Setup,
    pub ports: [u16; 2],
    pub daemons: [Option<Daemon>; 2],
    pub proxy: Option<Proxy>,
}

impl Pair {
    /// Writes both configurations and starts both agents. `base` picks this test's ports
    /// (base, base+1 listen; base+2, base+3 the proxy; base+4, base+5 NBD over TCP).
    pub fn start(name: &str, base: u16, setup: Setup) -> Pair {
        let dir = scratch(name);
        let ports = [base, base + 1];
        let proxy = setup.proxy.then(|| {
            Proxy::start([
                (base + 2, ports[1]), // alpha → beta
                (base + 3, ports[0]), // beta → alpha
            ])
        });
        for (i, n) in NODES.iter().enumerate() {
            let peer = 1 - i;
            let peer_port = if setup.proxy {
                base + 2 + i as u16
            } else {
                ports[peer]
            };
            let conf = format!(
                "resources {{\n r0 {{\n  node_id = {i}\n  peer_node_id = {peer}\n\
                 address = \"127.0.0.1:{}\"\n  peer_address = \"127.0.0.1:{peer_port}\"\n\
                 peer_name = \"{}\"\n  protocol = \"{}\"\n  cram_hmac_alg = \"sha256\"\n\
                 shared_secret = \"{}\"\n  resync_rate = \"{}\"\n  size = {}\n\
                 backing = \"{}\"\n  meta = \"{}\"\n  nbd_socket = \"{}\"\n\
                 nbd_tcp = \"127.0.0.1:{}\"\n  connect_int = 1\n  ping_int = 1\n  ping_timeout = 5\n }}\n}}\n",
                ports[i],
                NODES[peer],
                setup.protocol,
                setup.secrets[i],
                setup.resync_rate,
                setup.size,
                s(&dir.join(format!("{n}.img"))),
                s(&dir.join(format!("{n}.meta"))),
                s(&dir.join(format!("{n}.nbd"))),
                base + 4 + i as u16,
            );
            std::fs::write(dir.join(format!("{n}.conf")), conf).unwrap();
        }
        let mut p = Pair {
            dir,
            setup,
            ports,
            daemons: [None, None],
            proxy,
        };
        p.boot(0);
        p.boot(1);
        p
    }

    /// (Re)starts node `i`'s agent and waits until it answers. Each run logs to
    /// `NAME.log.run`; a restart first appends the earlier run's lines to `NAME.log`.
    pub fn boot(&mut self, i: usize) {
        let n = NODES[i];
        let conf = self.dir.join(format!("{n}.conf"));
        let run = self.dir.join(format!("{n}.log.run"));
        if let Ok(old) = std::fs::read_to_string(&run) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(format!("{n}.log")))
                .unwrap();
            f.write_all(old.as_bytes()).unwrap();
        }
        let mut d = Daemon::spawn(
            &self.sock(i),
            &["--config", s(&conf), "--unixctl", "none", "--log", "info"],
            &run,
        );
        d.wait_ready();
        self.daemons[i] = Some(d);
    }

    pub fn sock(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.sock", NODES[i]))
    }

    pub fn nbd(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.nbd", NODES[i]))
    }

    pub fn img(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.img", NODES[i]))
    }

    /// Everything node `i` logged, this run and earlier ones.
    pub fn log(&self, i: usize) -> String {
        let n = NODES[i];
        let mut t = std::fs::read_to_string(self.dir.join(format!("{n}.log"))).unwrap_or_default();
        t.push_str(
            &std::fs::read_to_string(self.dir.join(format!("{n}.log.run"))).unwrap_or_default(),
        );
        t
    }

    /// SIGKILLs node `i`'s agent.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut d) = self.daemons[i].take() {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
    }

    /// `keelctl -s SOCK ARGS…` against node `i`.
    pub fn ctl(&self, i: usize, args: &[&str]) -> Output {
        Command::new(KEELCTL)
            .arg("-s")
            .arg(self.sock(i))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("keelctl runs")
    }

    /// `keelctl VERB r0 ARGS…` that must succeed.
    pub fn ok(&self, i: usize, args: &[&str]) {
        let o = self.ctl(i, args);
        assert!(
            o.status.success(),
            "{} {args:?}: {}{}",
            NODES[i],
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `status r0 --json` of node `i`.
    pub fn json(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.ctl(i, &["status", "r0", "--json"]).stdout).into_owned()
    }

    /// A field of node `i`'s status (`"key": value`, quotes stripped).
    pub fn field(&self, i: usize, key: &str) -> String {
        field(&self.json(i), key)
    }

    /// Polls `cond` until it holds; panics with both logs after [`PATIENCE`].
    pub fn wait(&self, what: &str, mut cond: impl FnMut(&Pair) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "gave up waiting until {what}\n--- alpha status\n{}\n--- beta status\n{}\n--- alpha log\n{}\n--- beta log\n{}",
                self.json(0),
                self.json(1),
                self.log(0),
                self.log(1)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connected(&self) -> bool {
        (0..2).all(|i| self.field(i, "connection-state") == "Connected")
    }

    /// Connected, both UpToDate, nothing out of sync.
    pub fn in_sync(&self) -> bool {
        (0..2).all(|i| {
            let j = self.json(i);
            field(&j, "connection-state") == "Connected"
                && field(&j, "disk-state") == "UpToDate"
                && field(&j, "peer-disk-state") == "UpToDate"
                && field(&j, "out-of-sync") == "0"
        })
    }

    /// Connects, makes alpha Primary with `--force` and waits for the initial full sync.
    pub fn primary_synced(&self) {
        self.wait("the agents connect", Pair::connected);
        self.ok(0, &["primary", "r0", "--force"]);
        self.wait("the initial sync ends", Pair::in_sync);
    }

    /// The two backing files are byte-identical.
    pub fn identical(&self) -> bool {
        std::fs::read(self.img(0)).unwrap() == std::fs::read(self.img(1)).unwrap()
    }
}

/// `"key": value` in `json`, quotes stripped (first occurrence; keys are distinct enough).
pub fn field(json: &str, key: &str) -> String {
    let pat = format!("\"{key}\": ");
    json.find(&pat)
        .map(|at| {
            let rest = &json[at + pat.len()..];
            let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
            rest[..end].trim().trim_matches('"').to_string()
        })
        .unwrap_or_default()
}

/// `qemu-io` with `cmds` against an NBD socket; its output.
pub fn qemu_io(nbd: &Path, cmds: &[String]) -> Output {
    let mut c = Command::new("qemu-io");
    c.args(["-f", "raw"]);
    for x in cmds {
        c.arg("-c").arg(x);
    }
    c.arg(format!("nbd+unix:///r0?socket={}", s(nbd)))
        .stdin(Stdio::null())
        .output()
        .expect("qemu-io runs")
}

/// Writes that must succeed.
pub fn write_ok(nbd: &Path, cmds: &[String]) {
    let o = qemu_io(nbd, cmds);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && !out.contains("failed"),
        "qemu-io: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Bytes `[off, off+len)` of a file.
pub fn bytes_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut b = vec![0u8; len];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, off).unwrap();
    b
}
