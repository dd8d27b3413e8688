//! Test certificates made with the real `openssl` command: CAs and end-entity certificates
//! (usable as client and server, as OVS's are) in a private directory, loaded into
//! `keelson_linux::stream::SslArgs`.
//!
//! Without `openssl` the tests that need it print a note and pass, except under CI (env `CI`
//! set), where its absence fails.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use keelson_linux::stream::SslArgs;

/// Extensions for both kinds of certificate: a CA that signs, and an end entity that may be
/// server and client (rustls's webpki wants v3 certificates with these).
const CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = keelson test
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

static SERIAL: AtomicU32 = AtomicU32::new(1);

/// A directory of keys and certificates.
pub struct Pki {
    pub dir: PathBuf,
}

/// `openssl` (see `tools::find`).
pub fn openssl() -> Option<PathBuf> {
    super::tools::find("openssl", "openssl")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running openssl");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A fresh directory `dir` with the openssl config; `None` without openssl (outside CI).
    pub fn new(dir: &Path) -> Option<Pki> {
        openssl()?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("openssl.cnf"), CONFIG).unwrap();
        Some(Pki {
            dir: dir.to_owned(),
        })
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-privkey.pem"))
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-cert.pem"))
    }

    fn openssl(&self) -> Command {
        let mut c = Command::new("openssl");
        c.current_dir(&self.dir);
        c
    }

    /// A self-signed CA `name` (P-256 key).
    pub fn ca(&self, name: &str) -> &Self {
        run(self
            .openssl()
            .args([
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca_ext",
            ])
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-days", "30", "-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(self.key(name))
            .arg("-out")
            .arg(self.cert(name)));
        self
    }

    /// A key and certificate `name` signed by CA `ca`.
    pub fn leaf(&self, ca: &str, name: &str) -> &Self {
        let csr = self.dir.join(format!("{name}-req.pem"));
        run(self
            .openssl()
            .args(["req", "-new", "-config", "openssl.cnf"])
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(self.key(name))
            .arg("-out")
            .arg(&csr));
        let serial = std::process::id() * 1000 + SERIAL.fetch_add(1, Ordering::Relaxed);
        run(self
            .openssl()
            .args(["x509", "-req", "-days", "30"])
            .args(["-extfile", "openssl.cnf", "-extensions", "leaf_ext"])
            .args(["-set_serial", &serial.to_string()])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(self.cert(ca))
            .arg("-CAkey")
            .arg(self.key(ca))
            .arg("-out")
            .arg(self.cert(name)));
        self
    }

    /// `--private-key NAME-privkey.pem --certificate NAME-cert.pem --ca-cert CA-cert.pem`.
    pub fn args(&self, ca: &str, name: &str) -> SslArgs {
        SslArgs {
            private_key: Some(self.key(name)),
            certificate: Some(self.cert(name)),
            ca_cert: Some(self.cert(ca)),
        }
    }
}
