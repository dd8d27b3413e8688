//! NBD exports against the real qemu tools (qemu-utils): `qemu-img info`, `qemu-io` and
//! `qemu-img convert` over UNIX sockets and TCP, read-only and unknown exports, and hostile
//! clients (garbage, truncated handshakes, disconnects mid-request) that must not stop the
//! server. A raw client built from keelson-core's wire `Repr`s checks the error codes qemu never
//! lets us see (it refuses to open a read-only export read-write before any write is sent).
//!
//! Without qemu-img / qemu-io the qemu tests print a note and pass, except under CI.

mod tools;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keelson_core::nbd::wire::option::{info, reply};
use keelson_core::nbd::wire::transmission::{cmd_flags, flags, Command as Cmd};
use keelson_core::nbd::wire::{
    ClientFlagsRepr, GreetingRepr, InfoRepr, InfoRequest, OptionReplyRepr, OptionRequestRepr,
    RequestRepr, SimpleReplyRepr,
};
use keelson_core::nbd::Config;
use keelson_linux::nbd::{Backend, Endpoint, ExportTable, FileBackend, Server};

const MIB: usize = 1 << 20;

fn qemu(tool: &str) -> Option<PathBuf> {
    tools::find(tool, "qemu-utils")
}

/// A fresh directory for one test (short enough for `sun_path`).
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("nbd")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic noise (xorshift64), so a failing comparison is reproducible.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A server on `dir/sock` and 127.0.0.1:0 exporting `files` (name, path, read-only).
struct Fixture {
    unix: Server,
    tcp: Server,
    sock: PathBuf,
}

impl Fixture {
    fn new(dir: &Path, files: &[(&str, &Path, bool)]) -> Fixture {
        let exports = ExportTable::new();
        for (name, path, ro) in files {
            exports.insert(name, Arc::new(FileBackend::open(path, *ro).unwrap()));
        }
        let sock = dir.join("sock");
        let unix = Server::start(
            &Endpoint::Unix(sock.clone()),
            exports.clone(),
            Config::DEFAULT,
        )
        .unwrap();
        let tcp = Server::start(
            &Endpoint::Tcp("127.0.0.1:0".parse().unwrap()),
            exports,
            Config::DEFAULT,
        )
        .unwrap();
        Fixture { unix, tcp, sock }
    }

    fn unix_uri(&self, name: &str) -> String {
        format!("nbd+unix:///{name}?socket={}", self.sock.display())
    }

    fn tcp_uri(&self, name: &str) -> String {
        let Endpoint::Tcp(a) = self.tcp.endpoint() else {
            unreachable!()
        };
        format!("nbd://{a}/{name}")
    }

    fn assert_up(&self) {
        assert!(
            self.unix.is_running() && self.tcp.is_running(),
            "a listener stopped"
        );
    }
}

/// Runs a qemu tool with a time limit; the output is returned whatever the exit status.
fn run(tool: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout: out,
        stderr: err,
    }
}

fn ok(tool: &Path, args: &[&str]) -> String {
    let o = run(tool, args);
    assert!(
        o.status.success(),
        "{} {args:?} failed ({}):\n{}{}",
        tool.display(),
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn virtual_size(img: &Path, uri: &str) -> u64 {
    let json = ok(img, &["info", "--output=json", uri]);
    let at = json
        .find("\"virtual-size\":")
        .expect("virtual-size in qemu-img info");
    json[at + 15..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn image(dir: &Path, name: &str, len: usize) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .set_len(len as u64)
        .unwrap();
    p
}

#[test]
fn qemu_img_info_shows_the_size() {
    let Some(img) = qemu("qemu-img") else { return };
    let dir = scratch("info");
    let disk = image(&dir, "disk.img", 8 * MIB + 4096);
    let f = Fixture::new(&dir, &[("disk", &disk, false), ("", &disk, true)]);
    assert_eq!(
        virtual_size(&img, &f.unix_uri("disk")),
        8 * MIB as u64 + 4096
    );
    assert_eq!(
        virtual_size(&img, &f.tcp_uri("disk")),
        8 * MIB as u64 + 4096
    );
    // The empty name is the default export.
    assert_eq!(virtual_size(&img, &f.unix_uri("")), 8 * MIB as u64 + 4096);
}

#[test]
fn qemu_nbd_list_names_every_export() {
    let Some(nbd) = qemu("qemu-nbd") else { return };
    let dir = scratch("list");
    let disk = image(&dir, "disk.img", 2 * MIB);
    let f = Fixture::new(&dir, &[("disk", &disk, false), ("ro", &disk, true)]);
    // NBD_OPT_LIST, then NBD_OPT_INFO per export.
    let out = ok(&nbd, &["--list", "-k", f.sock.to_str().unwrap()]);
    assert!(out.contains("exports available: 2"), "{out}");
    let disk_at = out.find("export: 'disk'").expect("disk listed");
    let ro_at = out.find("export: 'ro'").expect("ro listed");
    assert!(out[disk_at..ro_at].contains("flags: 0x16d"), "{out}");
    assert!(
        out[ro_at..].contains("flags: 0x10f"),
        "read-only flag: {out}"
    );
    assert!(out.contains("max block: 33554432"), "{out}");
}

fn write_read_pattern(uri: &str, disk: &Path) {
    let Some(io) = qemu("qemu-io") else { return };
    let out = ok(
        &io,
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "read -P 0xab 0 1M",
            "-c",
            "write -z 1M 64k",
            "-c",
            "read -P 0 1M 64k",
            "-c",
            "flush",
            uri,
        ],
    );
    assert!(
        out.contains("wrote 1048576/1048576 bytes at offset 0"),
        "{out}"
    );
    assert!(
        out.contains("read 1048576/1048576 bytes at offset 0"),
        "{out}"
    );
    let bytes = std::fs::read(disk).unwrap();
    assert!(
        bytes[..MIB].iter().all(|&b| b == 0xab),
        "backing file lacks the pattern"
    );
    assert!(bytes[MIB..MIB + 65536].iter().all(|&b| b == 0));
}

#[test]
fn qemu_io_writes_reach_the_file_over_unix() {
    let dir = scratch("io-unix");
    let disk = image(&dir, "disk.img", 4 * MIB);
    std::fs::write(&disk, vec![0x5au8; 4 * MIB]).unwrap();
    let f = Fixture::new(&dir, &[("disk", &disk, false)]);
    write_read_pattern(&f.unix_uri("disk"), &disk);
}

#[test]
fn qemu_io_writes_reach_the_file_over_tcp() {
    let dir = scratch("io-tcp");
    let disk = image(&dir, "disk.img", 4 * MIB);
    std::fs::write(&disk, vec![0x5au8; 4 * MIB]).unwrap();
    let f = Fixture::new(&dir, &[("disk", &disk, false)]);
    write_read_pattern(&f.tcp_uri("disk"), &disk);
}

#[test]
fn qemu_img_convert_round_trip() {
    let Some(img) = qemu("qemu-img") else { return };
    let dir = scratch("convert");
    // Not a multiple of 1 MiB, so the last request is short.
    let len = 6 * MIB + 12288;
    let src = dir.join("src.raw");
    let data = noise(len, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(&src, &data).unwrap();
    let disk = image(&dir, "disk.img", len);
    let f = Fixture::new(&dir, &[("disk", &disk, false)]);
    let uri = f.unix_uri("disk");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(
        &img,
        &["convert", "-n", "-f", "raw", "-O", "raw", &s(&src), &uri],
    );
    assert!(
        std::fs::read(&disk).unwrap() == data,
        "export's file differs from the source"
    );
    let back = dir.join("back.raw");
    ok(
        &img,
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &f.tcp_uri("disk"),
            &s(&back),
        ],
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "read back differs from the source"
    );
}

#[test]
fn read_only_export_refuses_writes_and_keeps_serving() {
    let dir = scratch("ro");
    let disk = image(&dir, "ro.img", 2 * MIB);
    std::fs::write(&disk, vec![0x11u8; 2 * MIB]).unwrap();
    let f = Fixture::new(&dir, &[("ro", &disk, true)]);

    // On the wire: the read-only flag, then NBD_EPERM for every kind of write.
    let mut c = Raw::go(&f.sock, b"ro").unwrap();
    assert_ne!(c.flags & flags::READ_ONLY, 0);
    assert_eq!(c.write(1, 0, &[0xff; 4096]), 1, "WRITE → NBD_EPERM");
    assert_eq!(c.request(Cmd::WriteZeroes, 0, 2, 0, 4096), 1);
    assert_eq!(c.request(Cmd::Trim, 0, 3, 0, 4096), 1);
    let (err, data) = c.read(4, 0, 16);
    assert_eq!((err, data), (0, vec![0x11; 16]), "reads still work");
    c.disconnect();
    assert!(std::fs::read(&disk).unwrap().iter().all(|&b| b == 0x11));

    // qemu-io refuses to open it read-write and says why; the next client is served.
    if let Some(io) = qemu("qemu-io") {
        let o = run(
            &io,
            &["-f", "raw", "-c", "write -P 0xab 0 4k", &f.unix_uri("ro")],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("Permission denied"), "{err}");
        let out = ok(
            &io,
            &[
                "-r",
                "-f",
                "raw",
                "-c",
                "read -P 0x11 0 64k",
                &f.tcp_uri("ro"),
            ],
        );
        assert!(out.contains("read 65536/65536"), "{out}");
    }
    f.assert_up();
}

/// A backend whose role flips, as a DRBD device's does: writes on the primary, EPERM (EROFS
/// from the backend) once it is secondary, on connections opened before and after.
struct Role {
    file: FileBackend,
    secondary: AtomicBool,
}

impl Backend for Role {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_only(&self) -> bool {
        self.secondary.load(Ordering::SeqCst)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        if self.read_only() {
            return Err(std::io::Error::from_raw_os_error(libc::EROFS));
        }
        self.file.write_at(data, offset)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[test]
fn role_change_to_secondary_refuses_writes() {
    let dir = scratch("role");
    let disk = image(&dir, "r0.img", MIB);
    let role = Arc::new(Role {
        file: FileBackend::open(&disk, false).unwrap(),
        secondary: AtomicBool::new(false),
    });
    let exports = ExportTable::new();
    exports.insert("r0", role.clone());
    let sock = dir.join("sock");
    let server = Server::start(&Endpoint::Unix(sock.clone()), exports, Config::DEFAULT).unwrap();

    let mut before = Raw::go(&sock, b"r0").unwrap();
    assert_eq!(before.flags & flags::READ_ONLY, 0);
    assert_eq!(before.write(1, 0, b"primary"), 0);
    role.secondary.store(true, Ordering::SeqCst);
    assert_eq!(before.write(2, 0, b"second"), 1, "NBD_EPERM after demotion");
    let mut after = Raw::go(&sock, b"r0").unwrap();
    assert_ne!(
        after.flags & flags::READ_ONLY,
        0,
        "new clients see a read-only export"
    );
    assert_eq!(after.write(3, 0, b"x"), 1);
    assert_eq!(after.read(4, 0, 7), (0, b"primary".to_vec()));
    before.disconnect();
    after.disconnect();
    assert!(server.is_running());
}

#[test]
fn unknown_export_is_refused() {
    let dir = scratch("unknown");
    let disk = image(&dir, "disk.img", MIB);
    let f = Fixture::new(&dir, &[("disk", &disk, false)]);

    let mut c = Raw::handshake(&f.sock).unwrap();
    let replies = c.option(7, &go_data(b"nope"));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0.reply_type, reply::ERR_UNKNOWN);
    assert!(!replies[0].1.is_empty(), "the error carries a message");
    // Still haggling: NBD_OPT_LIST names the real export, then the right name works.
    let list = c.option(3, &[]);
    assert_eq!(list.len(), 2);
    assert_eq!(&list[0].1[4..], b"disk");
    assert_eq!(
        c.option(7, &go_data(b"disk")).last().unwrap().0.reply_type,
        reply::ACK
    );
    c.disconnect();

    // NBD_OPT_EXPORT_NAME has no error reply: the server closes the connection.
    let mut c = Raw::handshake(&f.sock).unwrap();
    c.send_option(1, b"nope");
    let mut b = [0u8; 1];
    assert_eq!(c.s.read(&mut b).unwrap_or(0), 0, "connection closed");

    if let Some(img) = qemu("qemu-img") {
        let o = run(&img, &["info", &f.unix_uri("nope")]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("export not available"), "{err}");
        assert_eq!(virtual_size(&img, &f.unix_uri("disk")), MIB as u64);
    }
    f.assert_up();
}

#[test]
fn hostile_clients_do_not_stop_the_server() {
    let dir = scratch("hostile");
    let disk = image(&dir, "disk.img", MIB);
    let f = Fixture::new(&dir, &[("disk", &disk, false)]);
    let connect = || {
        let s = UnixStream::connect(&f.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    // Connect and leave.
    drop(connect());
    // Half the client flags.
    let mut s = connect();
    s.write_all(&[0, 0]).unwrap();
    drop(s);
    // Garbage instead of an option: the server hangs up.
    let mut s = connect();
    let mut greeting = [0u8; 18];
    s.read_exact(&mut greeting).unwrap();
    s.write_all(&[0, 0, 0, 3]).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no reply to garbage");
    // Unknown client flags.
    let mut s = connect();
    s.read_exact(&mut greeting).unwrap();
    s.write_all(&[0xff, 0, 0, 0]).unwrap();
    let _ = s.read_to_end(&mut rest);
    // A truncated option, then gone.
    let mut c = Raw::handshake(&f.sock).unwrap();
    c.s.write_all(b"IHAVEOPT\0\0\0\x07\0\0\0\x20\0\0").unwrap();
    drop(c);
    // Mid-request: a write header promising 64 KiB, 100 bytes of it, then gone.
    let mut c = Raw::go(&f.sock, b"disk").unwrap();
    let mut h = [0u8; 28];
    RequestRepr {
        flags: 0,
        command: Cmd::Write,
        cookie: 1,
        offset: 0,
        length: 65536,
    }
    .emit(&mut h)
    .unwrap();
    c.s.write_all(&h).unwrap();
    c.s.write_all(&[0xee; 100]).unwrap();
    drop(c);
    // Garbage in the transmission phase.
    let mut c = Raw::go(&f.sock, b"disk").unwrap();
    c.s.write_all(&[0x42; 64]).unwrap();
    let _ = c.s.read_to_end(&mut rest);
    // Bad requests get errors and the connection goes on.
    let mut c = Raw::go(&f.sock, b"disk").unwrap();
    assert_eq!(
        c.request(Cmd::Read, 0, 1, MIB as u64, 1),
        22,
        "read past the end → EINVAL"
    );
    assert_eq!(
        c.write(2, MIB as u64 - 1, &[1, 2]),
        28,
        "write past the end → ENOSPC"
    );
    assert_eq!(
        c.request(Cmd::Other(99), 0, 3, 0, 0),
        22,
        "unknown command → EINVAL"
    );
    assert_eq!(
        c.request(Cmd::Read, cmd_flags::DF, 4, 0, 512),
        22,
        "unoffered flag → EINVAL"
    );
    assert_eq!(c.write(5, 0, b"fine"), 0);
    assert_eq!(c.request(Cmd::Flush, 0, 6, 0, 0), 0);
    c.disconnect();
    assert_eq!(&std::fs::read(&disk).unwrap()[..4], b"fine");

    // Everyone above is gone; the server still answers.
    let mut c = Raw::go(&f.sock, b"disk").unwrap();
    assert_eq!(c.read(7, 0, 4), (0, b"fine".to_vec()));
    c.disconnect();
    if let Some(img) = qemu("qemu-img") {
        assert_eq!(virtual_size(&img, &f.tcp_uri("disk")), MIB as u64);
    }
    f.assert_up();
    assert_eq!(
        f.unix.accepted(),
        9,
        "every hostile client was accepted and served"
    );
}

fn go_data(name: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 6 + name.len() + 2];
    InfoRequest::emit(name, &[info::BLOCK_SIZE], &mut d).unwrap();
    d
}

/// A minimal NBD client over keelson-core's wire `Repr`s.
struct Raw {
    s: UnixStream,
    flags: u16,
}

impl Raw {
    /// Greeting read, fixed-newstyle + no-zeroes flags sent.
    fn handshake(sock: &Path) -> std::io::Result<Raw> {
        let mut s = UnixStream::connect(sock)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut g = [0u8; GreetingRepr::LEN];
        s.read_exact(&mut g)?;
        let g = GreetingRepr::parse(&g).unwrap();
        assert_eq!(g.flags, 3);
        let mut f = [0u8; 4];
        ClientFlagsRepr { flags: 3 }.emit(&mut f).unwrap();
        s.write_all(&f)?;
        Ok(Raw { s, flags: 0 })
    }

    /// Handshake, then `NBD_OPT_GO` for `name`; panics unless it ends in ACK.
    fn go(sock: &Path, name: &[u8]) -> std::io::Result<Raw> {
        let mut c = Raw::handshake(sock)?;
        let replies = c.option(7, &go_data(name));
        assert_eq!(
            replies.last().unwrap().0.reply_type,
            reply::ACK,
            "GO failed"
        );
        for (_, data) in &replies {
            if let Ok(InfoRepr::Export { size: _, flags }) = InfoRepr::parse(data) {
                c.flags = flags;
            }
        }
        Ok(c)
    }

    fn send_option(&mut self, option: u32, data: &[u8]) {
        let mut buf = vec![0u8; 16 + data.len()];
        OptionRequestRepr {
            option,
            length: data.len() as u32,
        }
        .emit(data, &mut buf)
        .unwrap();
        self.s.write_all(&buf).unwrap();
    }

    /// Sends an option and reads replies up to the final one (ACK or an error).
    fn option(&mut self, option: u32, data: &[u8]) -> Vec<(OptionReplyRepr, Vec<u8>)> {
        self.send_option(option, data);
        let mut out = Vec::new();
        loop {
            let mut h = [0u8; OptionReplyRepr::HEADER_LEN];
            self.s.read_exact(&mut h).unwrap();
            let h = OptionReplyRepr::parse(&h).unwrap();
            assert_eq!(h.option, option);
            let mut d = vec![0u8; h.length as usize];
            self.s.read_exact(&mut d).unwrap();
            let last = h.reply_type == reply::ACK || h.is_error();
            out.push((h, d));
            if last {
                return out;
            }
        }
    }

    fn send_request(&mut self, command: Cmd, flags: u16, cookie: u64, offset: u64, length: u32) {
        let mut h = [0u8; 28];
        RequestRepr {
            flags,
            command,
            cookie,
            offset,
            length,
        }
        .emit(&mut h)
        .unwrap();
        self.s.write_all(&h).unwrap();
    }

    fn reply(&mut self, cookie: u64) -> u32 {
        let mut r = [0u8; SimpleReplyRepr::LEN];
        self.s.read_exact(&mut r).unwrap();
        let r = SimpleReplyRepr::parse(&r).unwrap();
        assert_eq!(r.cookie, cookie);
        r.error
    }

    /// A request without payload; returns the reply's error.
    fn request(&mut self, command: Cmd, flags: u16, cookie: u64, offset: u64, length: u32) -> u32 {
        self.send_request(command, flags, cookie, offset, length);
        self.reply(cookie)
    }

    fn write(&mut self, cookie: u64, offset: u64, data: &[u8]) -> u32 {
        self.send_request(Cmd::Write, 0, cookie, offset, data.len() as u32);
        self.s.write_all(data).unwrap();
        self.reply(cookie)
    }

    fn read(&mut self, cookie: u64, offset: u64, len: u32) -> (u32, Vec<u8>) {
        self.send_request(Cmd::Read, 0, cookie, offset, len);
        let err = self.reply(cookie);
        let mut d = vec![0u8; if err == 0 { len as usize } else { 0 }];
        self.s.read_exact(&mut d).unwrap();
        (err, d)
    }

    /// `NBD_CMD_DISC`, then waits for the server to close.
    fn disconnect(mut self) {
        self.send_request(Cmd::Disc, 0, 0, 0, 0);
        let mut rest = Vec::new();
        let _ = self.s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "nothing follows DISC");
    }
}
