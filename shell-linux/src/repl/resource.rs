//! A resource's settings as keelsond's configuration gives them (config-tree text), checked
//! whole before anything starts:
//!
//! ```text
//! resources {
//!     r0 {
//!         node_id = 0                      address = "127.0.0.1:7788"
//!         peer_node_id = 1                 peer_address = "127.0.0.1:7789"
//!         peer_name = "beta"               protocol = "C"
//!         shared_secret = "s3cret"         cram_hmac_alg = "sha256"
//!         resync_rate = "100M"             size = "64M"
//!         backing = "/var/lib/keelson/r0.img"
//!         meta = "/var/lib/keelson/r0.meta"            # default: BACKING.meta
//!         nbd_socket = "/run/keelson/r0.nbd"          nbd_tcp = "127.0.0.1:10809"
//!         ping_int = 10   ping_timeout = 5   connect_int = 10   timeout = 60
//!     }
//! }
//! ```
//!
//! Units are drbd.conf's: `ping_int` and `connect_int` in seconds, `ping_timeout` and
//! `timeout` in tenths of a second; sizes and rates take K/M/G suffixes (powers of 1024; a
//! bare number is bytes). Unknown keys are errors, so a typo never silently keeps a default.
//! Every error names `resources/NAME/KEY`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use keelson_core::config::{NodeRef, OwnedTree, Value};
use keelson_core::repl::admin::valid_resource_name;
use keelson_core::repl::conn::{Auth, Config, WireProtocol};
use keelson_core::repl::node::NodeConfig;
use keelson_core::repl::wire::auth::HmacAlg;

/// One resource's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Its name.
    pub name: String,
    /// The backing file or block device.
    pub backing: PathBuf,
    /// The external meta-data file.
    pub meta: PathBuf,
    /// Device size in bytes (None: the backing device's size).
    pub size: Option<u64>,
    /// Where we listen for the peer.
    pub address: SocketAddr,
    /// Where the peer listens.
    pub peer_address: SocketAddr,
    /// The peer's name (for status).
    pub peer_name: String,
    /// NBD export on a UNIX socket.
    pub nbd_socket: Option<PathBuf>,
    /// NBD export on TCP.
    pub nbd_tcp: Option<SocketAddr>,
    /// The node's settings.
    pub node: NodeConfig,
}

/// A bad `resources` section: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// `resources/NAME[/KEY]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every resource of `config`'s `resources` section, in file order.
pub fn resources(config: &OwnedTree) -> Result<Vec<ResourceConfig>, ConfigError> {
    let view = config.view();
    let Some(section) = keelson_core::config::Lookup::find_node(&view, "resources") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<ResourceConfig> = Vec::new();
    for r in section.children() {
        let rc = parse_one(&r)?;
        if out.iter().any(|o| o.name == rc.name) {
            return Err(err(&rc.name, None, "defined twice"));
        }
        out.push(rc);
    }
    Ok(out)
}

fn err(name: &str, key: Option<&str>, message: impl Into<String>) -> ConfigError {
    let path = match key {
        Some(k) => format!("resources/{name}/{k}"),
        None => format!("resources/{name}"),
    };
    ConfigError {
        path,
        message: message.into(),
    }
}

const KEYS: &[&str] = &[
    "node_id",
    "address",
    "peer_node_id",
    "peer_address",
    "peer_name",
    "protocol",
    "shared_secret",
    "cram_hmac_alg",
    "resync_rate",
    "size",
    "backing",
    "meta",
    "nbd_socket",
    "nbd_tcp",
    "ping_int",
    "ping_timeout",
    "connect_int",
    "timeout",
];

/// One key's value as text or integer.
enum Field<'t> {
    Str(&'t [u8]),
    Int(i64),
}

fn parse_one(r: &NodeRef<'_>) -> Result<ResourceConfig, ConfigError> {
    let name = String::from_utf8_lossy(r.key()).into_owned();
    if !valid_resource_name(r.key()) {
        return Err(err(&name, None, "not a valid resource name"));
    }
    if !r.is_section() {
        return Err(err(&name, None, "must be a section { ... }"));
    }
    let mut fields: Vec<(&str, Field<'_>)> = Vec::new();
    for n in r.children() {
        let key = String::from_utf8_lossy(n.key()).into_owned();
        let Some(&known) = KEYS.iter().find(|k| k.as_bytes() == n.key()) else {
            return Err(err(
                &name,
                Some(&key),
                format!("unknown key (known: {})", KEYS.join(", ")),
            ));
        };
        let v = match n.value() {
            Some(Value::Str(s)) => Field::Str(s),
            Some(Value::Int(i)) => Field::Int(i),
            _ => return Err(err(&name, Some(&key), "must be a string or an integer")),
        };
        if fields.iter().any(|(k, _)| *k == known) {
            return Err(err(&name, Some(&key), "given twice"));
        }
        fields.push((known, v));
    }
    let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| v);
    let text = |k: &'static str| -> Result<Option<String>, ConfigError> {
        match get(k) {
            None => Ok(None),
            Some(Field::Str(s)) => Ok(Some(String::from_utf8_lossy(s).into_owned())),
            Some(Field::Int(i)) => Ok(Some(i.to_string())),
        }
    };
    let need = |k: &'static str| -> Result<String, ConfigError> {
        text(k)?.ok_or_else(|| err(&name, Some(k), "missing"))
    };
    let int = |k: &'static str, lo: i64, hi: i64| -> Result<Option<i64>, ConfigError> {
        let v = match get(k) {
            None => return Ok(None),
            Some(Field::Int(i)) => *i,
            Some(Field::Str(s)) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| err(&name, Some(k), "must be an integer"))?,
        };
        if !(lo..=hi).contains(&v) {
            return Err(err(&name, Some(k), format!("{v} is not in {lo}..={hi}")));
        }
        Ok(Some(v))
    };
    let bytes = |k: &'static str| -> Result<Option<u64>, ConfigError> {
        match get(k) {
            None => Ok(None),
            Some(Field::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Field::Int(i)) => Err(err(&name, Some(k), format!("{i} is negative"))),
            Some(Field::Str(s)) => parse_size(s)
                .map(Some)
                .ok_or_else(|| err(&name, Some(k), "must be a size such as 4096, 64M or 1G")),
        }
    };
    let addr = |k: &'static str| -> Result<SocketAddr, ConfigError> {
        need(k)?
            .parse()
            .map_err(|_| err(&name, Some(k), "must be IP:PORT, e.g. \"127.0.0.1:7788\""))
    };

    let node_id = int("node_id", 0, 31)?.ok_or_else(|| err(&name, Some("node_id"), "missing"))?;
    let peer_node_id =
        int("peer_node_id", 0, 31)?.ok_or_else(|| err(&name, Some("peer_node_id"), "missing"))?;
    if node_id == peer_node_id {
        return Err(err(&name, Some("peer_node_id"), "must differ from node_id"));
    }
    let address = addr("address")?;
    let peer_address = addr("peer_address")?;
    let mut conn = Config::new(node_id as u32, peer_node_id as u32);
    if let Some(p) = text("protocol")? {
        conn.protocol = match p.as_str() {
            "A" | "a" => WireProtocol::A,
            "B" | "b" => WireProtocol::B,
            "C" | "c" => WireProtocol::C,
            _ => return Err(err(&name, Some("protocol"), "must be A, B or C")),
        };
    }
    match (text("shared_secret")?, text("cram_hmac_alg")?) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(err(
                &name,
                Some("cram_hmac_alg"),
                "missing (shared_secret needs it: sha1, sha256 or sha512)",
            ))
        }
        (None, Some(_)) => return Err(err(&name, Some("shared_secret"), "missing")),
        (Some(secret), Some(alg)) => {
            let alg = HmacAlg::from_name(alg.as_bytes()).ok_or_else(|| {
                err(
                    &name,
                    Some("cram_hmac_alg"),
                    "must be sha1, sha256 or sha512",
                )
            })?;
            conn.auth = Some(
                Auth::new(alg, secret.as_bytes())
                    .ok_or_else(|| err(&name, Some("shared_secret"), "longer than 63 bytes"))?,
            );
        }
    }
    if let Some(s) = int("ping_int", 1, 120)? {
        conn.ping_int_ms = s as u64 * 1000;
    }
    if let Some(t) = int("ping_timeout", 1, 300)? {
        conn.ping_timeout_ms = t as u64 * 100;
    }
    if let Some(s) = int("connect_int", 1, 120)? {
        conn.connect_int_ms = s as u64 * 1000;
    }
    if let Some(t) = int("timeout", 1, 600)? {
        conn.timeout_ms = t as u64 * 100;
    }
    let mut node = NodeConfig::new(conn);
    if let Some(rate) = bytes("resync_rate")? {
        node.resync_rate = rate;
    }
    let size = bytes("size")?;
    if let Some(s) = size {
        if s == 0 || s % 4096 != 0 {
            return Err(err(
                &name,
                Some("size"),
                "must be a non-zero multiple of 4 KiB",
            ));
        }
    }
    let backing = PathBuf::from(need("backing")?);
    let meta = match text("meta")? {
        Some(m) => PathBuf::from(m),
        None => {
            let mut m = backing.clone().into_os_string();
            m.push(".meta");
            PathBuf::from(m)
        }
    };
    let nbd_tcp = match text("nbd_tcp")? {
        None => None,
        Some(t) => Some(t.parse().map_err(|_| {
            err(
                &name,
                Some("nbd_tcp"),
                "must be IP:PORT, e.g. \"127.0.0.1:10809\"",
            )
        })?),
    };
    Ok(ResourceConfig {
        backing,
        meta,
        size,
        address,
        peer_address,
        peer_name: text("peer_name")?.unwrap_or_default(),
        nbd_socket: text("nbd_socket")?.map(PathBuf::from),
        nbd_tcp,
        node,
        name,
    })
}

/// `4096`, `64K`, `64M`, `1G`, `1T` (powers of 1024; an optional trailing `B` or `iB`).
pub fn parse_size(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (num, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        (i, 't' | 'T') => (&s[..i], 40),
        _ => (s, 0),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_core::config::ParseOptions;

    fn parse(text: &str) -> Result<Vec<ResourceConfig>, ConfigError> {
        resources(&OwnedTree::from_text_owned(text.as_bytes(), ParseOptions::KEEP).unwrap())
    }

    const GOOD: &str = "resources {\n r0 {\n node_id = 0\n peer_node_id = 1\n\
        address = \"127.0.0.1:7788\"\n peer_address = \"127.0.0.1:7789\"\n\
        backing = \"/tmp/r0.img\"\n protocol = \"B\"\n resync_rate = \"10M\"\n\
        shared_secret = \"s\"\n cram_hmac_alg = \"sha1\"\n ping_timeout = 3\n }\n}\n";

    #[test]
    fn a_full_resource() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.name, "r0");
        assert_eq!(r.meta, PathBuf::from("/tmp/r0.img.meta"));
        assert_eq!(r.node.conn.protocol, WireProtocol::B);
        assert_eq!(r.node.resync_rate, 10 << 20);
        assert_eq!(r.node.conn.ping_timeout_ms, 300);
        assert!(r.node.conn.auth.is_some());
    }

    /// drbdsetup's OpenDisk / OpenMdDisk answers depend on which file failed; the error says.
    #[test]
    fn open_errors_say_which_file() {
        use crate::repl::disk::{failed_area, Area, Disk};
        let dir = std::env::temp_dir().join(format!("keelson-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("r0.img");
        let text = GOOD.replace("/tmp/r0.img", img.to_str().unwrap());
        let e = Disk::open(&parse(&text).unwrap()[0]).err().unwrap();
        assert_eq!(failed_area(&e), Some(Area::Backing));
        assert!(e.to_string().starts_with("backing "), "{e}");
        let text = text.replace(
            "protocol",
            "size = \"1M\"\n meta = \"/nonexistent/r0.meta\"\n protocol",
        );
        let e = Disk::open(&parse(&text).unwrap()[0]).err().unwrap();
        assert_eq!(failed_area(&e), Some(Area::Meta));
        assert_eq!(failed_area(&std::io::Error::other("x")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(&GOOD.replace("protocol = \"B\"", "protocol = \"D\"")).unwrap_err();
        assert_eq!(e.to_string(), "resources/r0/protocol: must be A, B or C");
        let e = parse(&GOOD.replace("ping_timeout", "ping_timeuot")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("resources/r0/ping_timeuot: unknown key"));
        let e = parse(&GOOD.replace("backing = \"/tmp/r0.img\"\n", "")).unwrap_err();
        assert_eq!(e.to_string(), "resources/r0/backing: missing");
        let e = parse(&GOOD.replace("127.0.0.1:7789", "nowhere")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("resources/r0/peer_address: must be IP:PORT"));
        let e = parse(&GOOD.replace("node_id = 0", "node_id = 1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "resources/r0/peer_node_id: must differ from node_id"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"4096"), Some(4096));
        assert_eq!(parse_size(b"64M"), Some(64 << 20));
        assert_eq!(parse_size(b"1GiB"), Some(1 << 30));
        assert_eq!(parse_size(b"12kB"), Some(12 << 10));
        assert_eq!(parse_size(b"x"), None);
        assert_eq!(parse_size(b"99999999999T"), None);
    }
}
