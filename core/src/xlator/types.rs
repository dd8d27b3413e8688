//! The translator types Keelson implements and their option tables.
//!
//! Names, types, defaults and ranges are those GlusterFS 10.3 declares for each translator
//! (`xlators/*/src`, its `options[]` table), so a volfile validates here exactly when it
//! validates there. `storage/ram` is Keelson's own in-memory leaf; it has no upstream table.

use super::options::{OptionSpec as O, OptionType as T};

/// Which translator a type is; the graph keys its init checks and event rules on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// `storage/posix`: a leaf over a local directory.
    Posix,
    /// `storage/ram`: a leaf in memory.
    Ram,
    /// `debug/trace`: logs each fop, one child.
    Trace,
    /// `debug/io-stats`: counts fops, one or more children.
    IoStats,
    /// `cluster/distribute`: DHT over its children.
    Distribute,
    /// `cluster/replicate`: AFR over its children.
    Replicate,
    /// `performance/write-behind`: one child.
    WriteBehind,
    /// `features/locks`: lock server, one child over storage.
    Locks,
}

/// A translator type: its volfile name, kind and option table.
#[derive(Clone, Copy, Debug)]
pub struct XlatorType {
    /// The `type` word (`storage/posix`).
    pub name: &'static str,
    /// Which translator.
    pub kind: Kind,
    /// Its own option table (the default table, `log-level`, is [`DEFAULT_OPTIONS`]).
    pub options: &'static [O],
}

/// The table every translator has besides its own (`default_options` in xlator.c).
pub const DEFAULT_OPTIONS: &[O] = &[O::new(&["log-level"], T::Str).values(LOG_LEVELS)];

const LOG_LEVELS: &[&str] = &[
    "DEBUG", "WARNING", "ERROR", "INFO", "CRITICAL", "NONE", "TRACE",
];
const KB: f64 = 1024.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;
const INT_MAX: f64 = 2_147_483_647.0;

/// `storage/posix` (posix-common.c `posix_options`, Linux build).
pub const POSIX: &[O] = &[
    O::new(&["o-direct"], T::Bool),
    O::new(&["directory"], T::Path).default("{{brick.path}}"),
    O::new(&["hostname"], T::Any),
    O::new(&["export-statfs-size"], T::Bool).default("on"),
    O::new(&["mandate-attribute"], T::Bool),
    O::new(&["background-unlink"], T::Bool),
    O::new(&["janitor-sleep-duration"], T::Int)
        .at_least(1.0)
        .default("10"),
    O::new(&["volume-id"], T::Any).default("{{brick.volumeid}}"),
    O::new(&["glusterd-uuid"], T::Str),
    O::new(&["linux-aio"], T::Bool).default("off"),
    O::new(&["linux-io_uring"], T::Bool).default("off"),
    O::new(&["brick-uid"], T::Int).at_least(-1.0).default("-1"),
    O::new(&["brick-gid"], T::Int).at_least(-1.0).default("-1"),
    O::new(&["node-uuid-pathinfo"], T::Bool).default("off"),
    O::new(&["health-check-interval"], T::Int)
        .at_least(0.0)
        .default("30"),
    O::new(&["health-check-timeout"], T::Int)
        .at_least(0.0)
        .default("20"),
    O::new(&["reserve"], T::PercentOrSizeT)
        .at_least(0.0)
        .default("1"),
    O::new(&["batch-fsync-mode"], T::Str).default("reverse-fsync"),
    O::new(&["batch-fsync-delay-usec"], T::Int).default("0"),
    O::new(&["update-link-count-parent"], T::Bool).default("off"),
    O::new(&["gfid2path"], T::Bool).default("on"),
    O::new(&["gfid2path-separator"], T::Str).default(":"),
    O::new(&["shared-brick-count"], T::Int).default("1"),
    O::new(&["disable-landfill-purge"], T::Bool).default("off"),
    O::new(&["force-create-mode"], T::Int)
        .range(0.0, 511.0)
        .default("0000"),
    O::new(&["force-directory-mode"], T::Int)
        .range(0.0, 511.0)
        .default("0000"),
    O::new(&["create-mask"], T::Int)
        .range(0.0, 511.0)
        .default("0777"),
    O::new(&["create-directory-mask"], T::Int)
        .range(0.0, 511.0)
        .default("0777"),
    O::new(&["max-hardlinks"], T::Int)
        .at_least(0.0)
        .default("100"),
    O::new(&["fips-mode-rchecksum"], T::Bool).default("off"),
    O::new(&["ctime"], T::Bool).default("on"),
];

/// `storage/ram`: Keelson's in-memory leaf.
pub const RAM: &[O] = &[O::new(&["size-limit"], T::SizeT).default("0")];

/// `debug/trace` (trace.c).
pub const TRACE: &[O] = &[
    O::new(&["include-ops", "include"], T::Str),
    O::new(&["exclude-ops", "exclude"], T::Str),
    O::new(&["history-size"], T::SizeT).default("1024"),
    O::new(&["log-file"], T::Bool).default("no"),
    O::new(&["log-history"], T::Bool).default("no"),
];

const LOGGERS: &[&str] = &["gluster-log", "syslog"];
const LOG_FORMATS: &[&str] = &["no-msg-id", "with-msg-id"];

/// `debug/io-stats` (io-stats.c).
pub const IO_STATS: &[O] = &[
    O::new(&["dump-fd-stats"], T::Bool).default("off"),
    O::new(&["ios-dump-interval"], T::Int)
        .range(0.0, 3600.0)
        .default("0"),
    O::new(&["ios-sample-interval"], T::Int)
        .range(0.0, 65535.0)
        .default("0"),
    O::new(&["ios-dump-format"], T::Str)
        .default("json")
        .values(&["text", "json", "dict", "samples"]),
    O::new(&["ios-sample-buf-size"], T::Int)
        .range(1024.0, 1024.0 * 1024.0)
        .default("65535"),
    O::new(&["ios-dnscache-ttl-sec"], T::Int)
        .range(1.0, 3600.0 * 72.0)
        .default("86400"),
    O::new(&["latency-measurement"], T::Bool).default("off"),
    O::new(&["count-fop-hits"], T::Bool),
    O::new(&["log-level"], T::Str).values(LOG_LEVELS),
    O::new(&["client-log-level"], T::Str)
        .default("INFO")
        .values(LOG_LEVELS),
    O::new(&["sys-log-level"], T::Str)
        .default("CRITICAL")
        .values(&["WARNING", "ERROR", "INFO", "CRITICAL"]),
    O::new(&["brick-log-level"], T::Str)
        .default("INFO")
        .values(LOG_LEVELS),
    O::new(&["logger"], T::Str).values(LOGGERS),
    O::new(&["client-logger"], T::Str)
        .default("gluster-log")
        .values(LOGGERS),
    O::new(&["brick-logger"], T::Str)
        .default("gluster-log")
        .values(LOGGERS),
    O::new(&["log-format"], T::Str).values(LOG_FORMATS),
    O::new(&["client-log-format"], T::Str)
        .default("with-msg-id")
        .values(LOG_FORMATS),
    O::new(&["brick-log-format"], T::Str)
        .default("with-msg-id")
        .values(LOG_FORMATS),
    O::new(&["log-buf-size"], T::Int)
        .range(0.0, 20.0)
        .default("5"),
    O::new(&["client-log-buf-size"], T::Int)
        .range(0.0, 20.0)
        .default("5"),
    O::new(&["brick-log-buf-size"], T::Int)
        .range(0.0, 20.0)
        .default("5"),
    O::new(&["log-flush-timeout"], T::Time)
        .range(30.0, 300.0)
        .default("120"),
    O::new(&["client-log-flush-timeout"], T::Time)
        .range(30.0, 300.0)
        .default("120"),
    O::new(&["brick-log-flush-timeout"], T::Time)
        .range(30.0, 300.0)
        .default("120"),
    O::new(&["unique-id"], T::Str).default("/no/such/path"),
    O::new(&["global-threading"], T::Bool).default("off"),
    O::new(&["threads"], T::Int),
    O::new(&["brick-threads"], T::Int)
        .range(1.0, 128.0)
        .default("16"),
    O::new(&["client-threads"], T::Int)
        .range(1.0, 128.0)
        .default("16"),
    O::new(&["volume-id"], T::Str),
];

/// `cluster/distribute` (dht-shared.c `dht_options`).
pub const DISTRIBUTE: &[O] = &[
    O::new(&["lookup-unhashed"], T::Str).default("on").values(&[
        "auto", "yes", "no", "enable", "disable", "1", "0", "on", "off",
    ]),
    O::new(&["lookup-optimize"], T::Bool).default("on"),
    O::new(&["min-free-disk"], T::PercentOrSizeT).default("10%"),
    O::new(&["min-free-inodes"], T::Percent).default("5%"),
    O::new(&["unhashed-sticky-bit"], T::Bool).default("off"),
    O::new(&["use-readdirp"], T::Bool).default("on"),
    O::new(&["assert-no-child-down"], T::Bool).default("off"),
    O::new(&["directory-layout-spread"], T::Int).at_least(1.0),
    O::new(&["decommissioned-bricks"], T::Any),
    O::new(&["rebalance-cmd"], T::Int),
    O::new(&["commit-hash"], T::Int),
    O::new(&["node-uuid"], T::Str),
    O::new(&["rebalance-stats"], T::Bool).default("off"),
    O::new(&["readdir-optimize"], T::Bool).default("off"),
    O::new(&["rsync-hash-regex"], T::Str),
    O::new(&["extra-hash-regex"], T::Str),
    O::new(&["rebalance-filter"], T::Str),
    O::new(&["xattr-name"], T::Str).default("trusted.glusterfs.dht"),
    O::new(&["weighted-rebalance"], T::Bool).default("on"),
    O::new(&["local-volume-name"], T::Xlator),
    O::new(&["pattern.switch.case"], T::Any),
    O::new(&["randomize-hash-range-by-gfid"], T::Bool).default("off"),
    O::new(&["rebal-throttle"], T::Str).default("normal"),
    O::new(&["lock-migration"], T::Bool).default("off"),
    O::new(&["force-migration"], T::Bool).default("off"),
    O::new(&["ensure-durability"], T::Bool).default("on"),
];

/// `cluster/replicate` (afr.c).
pub const REPLICATE: &[O] = &[
    O::new(&["read-subvolume"], T::Xlator),
    O::new(&["read-subvolume-index"], T::Int).default("-1"),
    O::new(&["read-hash-mode"], T::Int)
        .range(0.0, 5.0)
        .default("1"),
    O::new(&["choose-local"], T::Bool).default("true"),
    O::new(&["background-self-heal-count"], T::Int)
        .at_least(0.0)
        .range_max(256.0)
        .default("8"),
    O::new(&["halo-shd-max-latency"], T::Int)
        .range(1.0, 99999.0)
        .default("99999"),
    O::new(&["halo-enabled"], T::Bool).default("False"),
    O::new(&["halo-nfsd-max-latency"], T::Int)
        .range(1.0, 99999.0)
        .default("5"),
    O::new(&["halo-max-latency"], T::Int)
        .range(1.0, 99999.0)
        .default("5"),
    O::new(&["halo-max-replicas"], T::Int)
        .range(1.0, 99999.0)
        .default("99999"),
    O::new(&["halo-min-replicas"], T::Int)
        .range(1.0, 99999.0)
        .default("2"),
    O::new(&["heal-wait-queue-length"], T::Int)
        .at_least(0.0)
        .range_max(10000.0)
        .default("128"),
    O::new(&["data-self-heal"], T::Str).default("off").values(&[
        "1", "on", "yes", "true", "enable", "0", "off", "no", "false", "disable", "open",
    ]),
    O::new(&["data-self-heal-algorithm"], T::Str).values(&["diff", "full"]),
    O::new(&["data-self-heal-window-size"], T::Int)
        .range(1.0, 1024.0)
        .default("8"),
    O::new(&["metadata-self-heal"], T::Bool).default("off"),
    O::new(&["entry-self-heal"], T::Bool).default("off"),
    O::new(&["data-change-log"], T::Bool).default("on"),
    O::new(&["metadata-change-log"], T::Bool).default("on"),
    O::new(&["entry-change-log"], T::Bool).default("on"),
    O::new(&["optimistic-change-log"], T::Bool).default("on"),
    O::new(&["inodelk-trace"], T::Bool).default("off"),
    O::new(&["entrylk-trace"], T::Bool).default("off"),
    O::new(&["pre-op-compat"], T::Bool).default("on"),
    O::new(&["eager-lock"], T::Bool).default("on"),
    O::new(&["self-heal-daemon"], T::Bool).default("on"),
    O::new(&["iam-self-heal-daemon"], T::Bool).default("off"),
    O::new(&["iam-nfs-daemon"], T::Bool).default("off"),
    O::new(&["quorum-type"], T::Str)
        .default("none")
        .values(&["none", "auto", "fixed"]),
    O::new(&["quorum-count"], T::Int).range(1.0, INT_MAX),
    O::new(&["quorum-reads"], T::Bool).default("no"),
    O::new(&["node-uuid"], T::Str),
    O::new(&["post-op-delay-secs"], T::Int)
        .range(0.0, INT_MAX)
        .default("1"),
    O::new(&["self-heal-readdir-size"], T::SizeT)
        .range(KB, 128.0 * KB)
        .default("1KB"),
    O::new(&["ensure-durability"], T::Bool).default("on"),
    O::new(&["afr-dirty-xattr"], T::Str).default("trusted.afr.dirty"),
    O::new(&["afr-pending-xattr"], T::Str),
    O::new(&["metadata-splitbrain-forced-heal"], T::Bool).default("off"),
    O::new(&["heal-timeout"], T::Int)
        .range(5.0, INT_MAX)
        .default("600"),
    O::new(&["consistent-metadata"], T::Bool).default("no"),
    O::new(&["arbiter-count"], T::Int),
    O::new(&["thin-arbiter"], T::Str),
    O::new(&["shd-max-threads"], T::Int)
        .range(1.0, 64.0)
        .default("1"),
    O::new(&["shd-wait-qlength"], T::Int)
        .range(1.0, 655536.0)
        .default("1024"),
    O::new(&["locking-scheme"], T::Str)
        .default("full")
        .values(&["full", "granular"]),
    O::new(&["full-lock"], T::Bool).default("yes"),
    O::new(&["granular-entry-heal"], T::Bool).default("no"),
    O::new(&["favorite-child-policy"], T::Str)
        .default("none")
        .values(&["none", "size", "ctime", "mtime", "majority"]),
    O::new(&["consistent-io"], T::Bool).default("no"),
    O::new(&["use-compound-fops"], T::Bool).default("no"),
    O::new(&["use-anonymous-inode"], T::Bool).default("no"),
];

/// `performance/write-behind` (write-behind.c).
pub const WRITE_BEHIND: &[O] = &[
    O::new(&["write-behind"], T::Bool).default("off"),
    O::new(&["pass-through"], T::Bool).default("false"),
    O::new(&["flush-behind"], T::Bool).default("on"),
    O::new(&["cache-size", "window-size"], T::SizeT)
        .range(512.0 * KB, GB)
        .default("1MB"),
    O::new(&["trickling-writes"], T::Bool).default("on"),
    O::new(&["strict-O_DIRECT"], T::Bool).default("off"),
    O::new(&["strict-write-ordering"], T::Bool).default("off"),
    O::new(&["resync-failed-syncs-after-fsync"], T::Bool).default("off"),
    O::new(&["aggregate-size"], T::SizeT).default("128KB"),
];

/// `features/locks` (locks/src/posix.c).
pub const LOCKS: &[O] = &[
    O::new(&["mandatory-locking"], T::Str).default("off"),
    O::new(&["trace"], T::Bool).default("off"),
    O::new(&["monkey-unlocking"], T::Bool).default("false"),
    O::new(&["revocation-secs"], T::Int)
        .range(0.0, INT_MAX)
        .default("0"),
    O::new(&["revocation-clear-all"], T::Bool).default("false"),
    O::new(&["revocation-max-blocked"], T::Int)
        .range(0.0, INT_MAX)
        .default("0"),
    O::new(&["notify-contention"], T::Bool).default("yes"),
    O::new(&["notify-contention-delay"], T::Int)
        .range(0.0, 60.0)
        .default("5"),
    O::new(&["enforce-mandatory-lock"], T::Bool).default("off"),
];

/// Every type Keelson implements.
pub const BUILTIN: &[XlatorType] = &[
    XlatorType {
        name: "storage/posix",
        kind: Kind::Posix,
        options: POSIX,
    },
    XlatorType {
        name: "storage/ram",
        kind: Kind::Ram,
        options: RAM,
    },
    XlatorType {
        name: "debug/trace",
        kind: Kind::Trace,
        options: TRACE,
    },
    XlatorType {
        name: "debug/io-stats",
        kind: Kind::IoStats,
        options: IO_STATS,
    },
    XlatorType {
        name: "cluster/distribute",
        kind: Kind::Distribute,
        options: DISTRIBUTE,
    },
    XlatorType {
        name: "cluster/replicate",
        kind: Kind::Replicate,
        options: REPLICATE,
    },
    XlatorType {
        name: "performance/write-behind",
        kind: Kind::WriteBehind,
        options: WRITE_BEHIND,
    },
    XlatorType {
        name: "features/locks",
        kind: Kind::Locks,
        options: LOCKS,
    },
];

/// Finds a type by its volfile name in `registry`.
pub fn resolve<'r>(registry: &'r [XlatorType], name: &super::Word<'_>) -> Option<&'r XlatorType> {
    registry.iter().find(|t| name.eq_bytes(t.name.as_bytes()))
}
