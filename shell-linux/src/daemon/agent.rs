//! keelsond's own state and the requests it answers, as a core [`Dispatch`](keelson_core::daemon::Dispatch) table.
//!
//! The state is small and serializable as a config tree, which is what a takeover hands from
//! the old instance to the new one.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use keelson_core::config::{Lookup, NodeId, Overflow, OwnedTree, Sink, Value};
use keelson_core::daemon::dispatch::Command;
use keelson_core::daemon::message::{self, Request};
use keelson_core::daemon::simple::{write_reply, Arg};
use keelson_core::repl::admin::{self, NoResources, ReplControl};

/// What keelsond remembers between requests (and across a takeover).
pub struct Agent {
    /// Values stored with `set`.
    pub values: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Requests answered by this and earlier instances.
    pub served: i64,
    /// How many takeovers this state has gone through.
    pub generation: i64,
    /// The configuration in force.
    pub config: OwnedTree,
    /// When this instance started.
    pub started: Instant,
    /// Protocol name, for `dump` (lvmpolld's format when it is `lvmpolld`).
    pub protocol: String,
    /// What answers the `repl/*` requests: [`NoResources`] ("Unknown resource" to every
    /// command) until a resource driver is installed here.
    pub repl: Box<dyn ReplControl + Send>,
}

impl Agent {
    /// Fresh state with `config`.
    pub fn new(config: OwnedTree, protocol: &str) -> Self {
        Agent {
            values: BTreeMap::new(),
            served: 0,
            generation: 0,
            config,
            started: Instant::now(),
            protocol: protocol.to_owned(),
            repl: Box::new(NoResources),
        }
    }

    /// The state as a config tree:
    /// `state { served=N generation=N values=["key", "value", …] }`.
    ///
    /// The stored pairs go into one string array rather than one node per key: a key is any byte
    /// string a client sent (spaces, `/`, `{`, quotes), and only a string value survives the
    /// round trip through the writer and parser whatever it holds. A key that broke the reply's
    /// parse would cost the whole takeover after the old instance has already let go.
    pub fn to_tree(&self) -> OwnedTree {
        let mut t = OwnedTree::empty();
        // Growable storage never reports Full.
        let st = t.add_section(NodeId::ROOT, b"state").expect("growable");
        let _ = t.add_value(st, b"served", Value::Int(self.served));
        let _ = t.add_value(st, b"generation", Value::Int(self.generation));
        let pairs: Vec<Value<'_>> = self
            .values
            .iter()
            .flat_map(|(k, v)| [Value::Str(k), Value::Str(v)])
            .collect();
        let _ = t.add_array(st, b"values", &pairs);
        t
    }

    /// Restores what [`Agent::to_tree`] wrote (a takeover's reply body). The older form, a
    /// `values { key = "value" }` section, is read too, so an older instance can hand over.
    pub fn restore(&mut self, tree: &OwnedTree) {
        let v = tree.view();
        self.served = v.find_int64("state/served", 0);
        self.generation = v.find_int64("state/generation", 0) + 1;
        self.values.clear();
        let Some(node) = v.find_node("state/values") else {
            return;
        };
        if node.is_section() {
            for n in node.children() {
                if let Some(Value::Str(s)) = n.value() {
                    self.values.insert(n.key().to_vec(), s.to_vec());
                }
            }
            return;
        }
        let strings: Vec<&[u8]> = node.values().filter_map(|r| r.value.as_bytes()).collect();
        for pair in strings.chunks_exact(2) {
            self.values.insert(pair[0].to_vec(), pair[1].to_vec());
        }
    }
}

impl Agent {
    /// What `status` reports, on the request socket and on the unixctl socket alike.
    pub fn status(&self) -> [(&'static str, i64); 5] {
        [
            ("pid", i64::from(std::process::id())),
            ("served", self.served),
            ("generation", self.generation),
            ("uptime", self.started.elapsed().as_secs() as i64),
            ("values", self.values.len() as i64),
        ]
    }
}

fn status(a: &mut Agent, _: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    let fields = a.status().map(|(k, v)| (k, Arg::Int(v)));
    write_reply(b"OK", &fields, out)
}

fn set(a: &mut Agent, r: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    let Some(key) = r.str("key") else {
        return message::failed("request requires key set", out);
    };
    // keelctl sends `value=42` as an integer; the store keeps text.
    let value = match r
        .tree()
        .and_then(|t| t.find_node("value"))
        .and_then(|n| n.value())
    {
        Some(Value::Str(s)) => s.to_vec(),
        Some(Value::Int(i)) => i.to_string().into_bytes(),
        _ => return message::failed("request requires value set", out),
    };
    let old = a.values.insert(key.to_vec(), value);
    match old {
        Some(o) => write_reply(b"OK", &[("previous", Arg::Str(&o))], out),
        None => message::ok(out),
    }
}

fn get(a: &mut Agent, r: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    let Some(key) = r.str("key") else {
        return message::failed("request requires key set", out);
    };
    match a.values.get(key) {
        Some(v) => write_reply(b"OK", &[("value", Arg::Str(v))], out),
        None => write_reply(b"not_found", &[], out),
    }
}

fn state(a: &mut Agent, _: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    message::ok(out)?;
    a.to_tree().view().write(&mut &mut *out)
}

/// The configuration in force, as a `config` section (what SIGHUP reloads).
fn config(a: &mut Agent, _: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    message::ok(out)?;
    out.put(b"config {\n")?;
    for n in a.config.view().top_level() {
        let mut text = Vec::new();
        let _ = n.write_one(&mut text);
        for line in text.split_inclusive(|&c| c == b'\n') {
            out.put(b"\t")?;
            out.put(line)?;
        }
    }
    out.put(b"}\n")
}

/// lvmpolld's `dump` body when we stand in for lvmpolld (no polling operations of our own); our
/// own state otherwise.
fn dump(a: &mut Agent, r: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    if a.protocol != "lvmpolld" {
        return state(a, r, out);
    }
    // Raw text, not a response tree, ending in `}` with no newline (config-tree.md §4).
    out.put(b"# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n}")
}

/// keelsond's requests (besides the built-in `hello` and `help`, and `takeover`, which the
/// server answers itself because it needs the listening socket).
pub const COMMANDS: &[Command<Agent>] = &[
    Command {
        name: "status",
        about: "pid, requests served, takeover generation, uptime",
        run: status,
    },
    Command {
        name: "set",
        about: "store `value` under `key`",
        run: set,
    },
    Command {
        name: "get",
        about: "the value stored under `key`",
        run: get,
    },
    Command {
        name: "state",
        about: "everything a takeover would hand over",
        run: state,
    },
    Command {
        name: "config",
        about: "the configuration in force (re-read on SIGHUP)",
        run: config,
    },
    Command {
        name: "dump",
        about: "the state (lvmpolld's dump format when speaking lvmpolld)",
        run: dump,
    },
];

/// Every `repl/*` request: the core's admin table answers through [`Agent::repl`].
fn repl(a: &mut Agent, r: &Request<'_>, out: &mut dyn Sink) -> Result<(), Overflow> {
    admin::answer(&mut *a.repl, r, out)
}

/// The whole dispatch table: [`COMMANDS`], then one `repl/*` request per verb of
/// [`admin::TABLE`] (its one-line help as the description).
pub fn commands() -> &'static [Command<Agent>] {
    static ALL: OnceLock<Vec<Command<Agent>>> = OnceLock::new();
    ALL.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| Command {
                name: c.name,
                about: c.about,
                run: c.run,
            })
            .chain(admin::TABLE.iter().map(|v| Command {
                name: v.request,
                about: v.help,
                run: repl,
            }))
            .collect()
    })
}
