//! The command table: every control verb with its resource argument, flags, one-line help, the
//! libdaemon request it maps to and the DRBD netlink operation it stands for (replication.md
//! §7), and [`Invocation`], one parsed command, from words or from a request and back.

use core::fmt;

use crate::config::{Lookup, Overflow, Sink};
use crate::daemon::message::Request;
use crate::daemon::simple::{write_int_line, write_str_line};

/// A control verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verb {
    /// Attach and connect (drbdadm's `up`).
    Up,
    /// Disconnect, detach and forget the resource.
    Down,
    /// Promote.
    Primary,
    /// Demote.
    Secondary,
    /// Connect to the peer.
    Connect,
    /// Disconnect from the peer.
    Disconnect,
    /// Attach the backing disk and its meta data.
    Attach,
    /// Detach the backing disk.
    Detach,
    /// Resync everything from the peer.
    Invalidate,
    /// Resync everything to the peer.
    InvalidateRemote,
    /// Pause the resync.
    PauseSync,
    /// Resume the resync.
    ResumeSync,
    /// Start a new data generation.
    NewCurrentUuid,
    /// Report states.
    Status,
}

/// A command-line flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flag {
    /// `--force`.
    Force,
    /// `--discard-my-data`.
    DiscardMyData,
    /// `--clear-bitmap`.
    ClearBitmap,
    /// `--json` (how the client prints; not sent).
    Json,
}

impl Flag {
    /// Every flag.
    pub const ALL: [Flag; 4] = [
        Flag::Force,
        Flag::DiscardMyData,
        Flag::ClearBitmap,
        Flag::Json,
    ];

    /// The name after `--`.
    pub const fn name(self) -> &'static str {
        match self {
            Flag::Force => "force",
            Flag::DiscardMyData => "discard-my-data",
            Flag::ClearBitmap => "clear-bitmap",
            Flag::Json => "json",
        }
    }

    /// The request key it travels as (`force = 1`); `None` for presentation flags.
    pub const fn key(self) -> Option<&'static str> {
        match self {
            Flag::Force => Some("force"),
            Flag::DiscardMyData => Some("discard_my_data"),
            Flag::ClearBitmap => Some("clear_bitmap"),
            Flag::Json => None,
        }
    }

    /// One line of help.
    pub const fn help(self) -> &'static str {
        match self {
            Flag::Force => "even without UpToDate data (the data here becomes the good copy)",
            Flag::DiscardMyData => "after a split brain, be the side whose changes are dropped",
            Flag::ClearBitmap => "on two fresh nodes, skip the initial full sync",
            Flag::Json => "print as drbdsetup status --json does",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }
    /// This set and `f`.
    pub const fn with(self, f: Flag) -> Flags {
        Flags(self.0 | f.bit())
    }
    /// Whether `f` is in the set.
    pub const fn has(self, f: Flag) -> bool {
        self.0 & f.bit() != 0
    }
    /// The flags in the set.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |&f| self.has(f))
    }
}

/// Whether a verb names its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResourceArg {
    /// Exactly one resource.
    Required,
    /// A resource, `all`, or nothing (= all).
    Optional,
}

/// One row of the table.
#[derive(Debug)]
pub struct VerbSpec {
    /// The verb.
    pub verb: Verb,
    /// Its name on the command line (drbdsetup's).
    pub name: &'static str,
    /// The libdaemon request name.
    pub request: &'static str,
    /// Its resource argument.
    pub resource: ResourceArg,
    /// The flags it takes.
    pub flags: &'static [Flag],
    /// One line of help.
    pub help: &'static str,
    /// The `DRBD_ADM_*` netlink operation it corresponds to (replication.md §7); `up` is
    /// drbdadm's sequence of several.
    pub drbd_op: Option<u8>,
}

macro_rules! verbs {
    ($( $verb:ident $name:literal $res:ident [$($flag:ident),*] $op:expr, $help:literal; )*) => {
        /// Every verb, in [`Verb`] order.
        pub const TABLE: &[VerbSpec] = &[$(
            VerbSpec {
                verb: Verb::$verb,
                name: $name,
                request: concat!("repl/", $name),
                resource: ResourceArg::$res,
                flags: &[$(Flag::$flag),*],
                help: $help,
                drbd_op: $op,
            },
        )*];
    };
}

verbs! {
    Up "up" Required [] None, "bring the resource up: attach its disk, then connect to the peer";
    Down "down" Required [] Some(27), "take the resource down: disconnect, detach, forget it";
    Primary "primary" Required [Force] Some(14), "promote to Primary";
    Secondary "secondary" Required [] Some(15), "demote to Secondary";
    Connect "connect" Required [DiscardMyData] Some(10), "connect to the peer";
    Disconnect "disconnect" Required [] Some(11), "disconnect from the peer";
    Attach "attach" Required [] Some(12), "attach the backing disk and its meta data";
    Detach "detach" Required [] Some(18), "detach the backing disk (Diskless)";
    Invalidate "invalidate" Required [] Some(19), "discard the local data: full resync from the peer";
    InvalidateRemote "invalidate-remote" Required [] Some(20), "discard the peer's data: full resync to the peer";
    PauseSync "pause-sync" Required [] Some(21), "pause the resync";
    ResumeSync "resume-sync" Required [] Some(22), "resume a paused resync";
    NewCurrentUuid "new-current-uuid" Required [ClearBitmap] Some(16), "start a new data generation";
    Status "status" Optional [Json] Some(30), "show roles, connection, disk and resync states";
}

// `Verb::spec` indexes the table by discriminant: checked here, at compile time.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].verb as usize == i);
        i += 1;
    }
    assert!(TABLE.len() == Verb::Status as usize + 1);
};

impl Verb {
    /// Its row.
    pub const fn spec(self) -> &'static VerbSpec {
        &TABLE[self as usize]
    }
    /// Its command-line name.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }
}

impl VerbSpec {
    /// The row for command-line name `name`.
    pub fn find(name: &[u8]) -> Option<&'static VerbSpec> {
        TABLE.iter().find(|s| s.name.as_bytes() == name)
    }
    /// The row for request name `request`.
    pub fn by_request(request: &[u8]) -> Option<&'static VerbSpec> {
        TABLE.iter().find(|s| s.request.as_bytes() == request)
    }
    /// Whether the verb takes `f`.
    pub fn takes(&self, f: Flag) -> bool {
        self.flags.contains(&f)
    }
    /// `primary RESOURCE [--force]`, for usage lines.
    pub fn usage(&'static self) -> Usage {
        Usage(self)
    }
}

/// A verb's usage line ([`VerbSpec::usage`]).
pub struct Usage(&'static VerbSpec);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)?;
        f.write_str(match self.0.resource {
            ResourceArg::Required => " RESOURCE",
            ResourceArg::Optional => " [RESOURCE|all]",
        })?;
        for flag in self.0.flags {
            write!(f, " [--{}]", flag.name())?;
        }
        Ok(())
    }
}

/// The longest resource name.
pub const MAX_RESOURCE_NAME: usize = 63;

/// Resource names: 1 to 63 of `A-Z a-z 0-9 _ - . +`, not starting with `-`, and not `all`
/// (which means every resource to `status`).
pub fn valid_resource_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RESOURCE_NAME
        && name.first() != Some(&b'-')
        && name != b"all"
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'+'))
}

/// Why words or a request are not a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParseError<'a> {
    /// No words at all.
    NoCommand,
    /// The verb (or request name) is not in the table.
    UnknownCommand(&'a [u8]),
    /// The verb needs a resource and got none.
    MissingResource(Verb),
    /// A flag the verb does not take (`--name` as given).
    UnknownFlag {
        /// The verb.
        verb: Verb,
        /// The flag, as given.
        flag: &'a [u8],
    },
    /// A second resource or other stray word.
    ExtraArgument {
        /// The verb.
        verb: Verb,
        /// The word.
        arg: &'a [u8],
    },
    /// Not a resource name ([`valid_resource_name`]).
    BadResource {
        /// The verb.
        verb: Verb,
        /// The name, as given.
        name: &'a [u8],
    },
}

struct CommandList;

impl fmt::Display for CommandList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in TABLE.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(s.name)?;
        }
        Ok(())
    }
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::NoCommand => write!(f, "no command given; commands: {CommandList}"),
            ParseError::UnknownCommand(c) => write!(
                f,
                "unknown command '{}'; commands: {CommandList}",
                c.escape_ascii()
            ),
            ParseError::MissingResource(v) => write!(
                f,
                "{}: missing resource; usage: {}",
                v.name(),
                v.spec().usage()
            ),
            ParseError::UnknownFlag { verb, flag } => write!(
                f,
                "{}: unknown flag '{}'; usage: {}",
                verb.name(),
                flag.escape_ascii(),
                verb.spec().usage()
            ),
            ParseError::ExtraArgument { verb, arg } => write!(
                f,
                "{}: unexpected argument '{}'; usage: {}",
                verb.name(),
                arg.escape_ascii(),
                verb.spec().usage()
            ),
            ParseError::BadResource { verb, name } if name == b"all" => write!(
                f,
                "{}: takes one resource, not 'all'; usage: {}",
                verb.name(),
                verb.spec().usage()
            ),
            ParseError::BadResource { verb, name } => write!(
                f,
                "{}: '{}' is not a resource name (1 to {MAX_RESOURCE_NAME} of A-Z a-z 0-9 _ - . +, \
                 not starting with -)",
                verb.name(),
                name.escape_ascii()
            ),
        }
    }
}

/// One command: verb, resource (`None` only for `status` of all) and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Invocation<'a> {
    /// The verb.
    pub verb: Verb,
    /// The resource.
    pub resource: Option<&'a str>,
    /// The flags given.
    pub flags: Flags,
}

fn resource_of<'a>(verb: Verb, name: &'a [u8]) -> Result<Option<&'a str>, ParseError<'a>> {
    if verb.spec().resource == ResourceArg::Optional && name == b"all" {
        return Ok(None);
    }
    if !valid_resource_name(name) {
        return Err(ParseError::BadResource { verb, name });
    }
    // Valid names are ASCII.
    Ok(core::str::from_utf8(name).ok())
}

impl<'a> Invocation<'a> {
    /// A checked invocation.
    pub fn new(
        verb: Verb,
        resource_name: Option<&'a str>,
        flags: Flags,
    ) -> Result<Invocation<'a>, ParseError<'a>> {
        let spec = verb.spec();
        if let Some(bad) = flags.iter().find(|&f| !spec.takes(f)) {
            return Err(ParseError::UnknownFlag {
                verb,
                flag: bad.name().as_bytes(),
            });
        }
        let resource = match resource_name {
            Some(n) => resource_of(verb, n.as_bytes())?,
            None if spec.resource == ResourceArg::Optional => None,
            None => return Err(ParseError::MissingResource(verb)),
        };
        Ok(Invocation {
            verb,
            resource,
            flags,
        })
    }

    /// Parses `VERB [RESOURCE] [--flag…]` (flags may come anywhere after the verb).
    pub fn parse(words: &[&'a str]) -> Result<Invocation<'a>, ParseError<'a>> {
        let (first, rest) = words.split_first().ok_or(ParseError::NoCommand)?;
        let spec =
            VerbSpec::find(first.as_bytes()).ok_or(ParseError::UnknownCommand(first.as_bytes()))?;
        let verb = spec.verb;
        let mut name = None;
        let mut flags = Flags::empty();
        for w in rest {
            if let Some(f) = w.strip_prefix("--") {
                match spec.flags.iter().find(|fl| fl.name() == f) {
                    Some(&fl) => flags = flags.with(fl),
                    None => {
                        return Err(ParseError::UnknownFlag {
                            verb,
                            flag: w.as_bytes(),
                        })
                    }
                }
            } else if w.starts_with('-') && w.len() > 1 {
                return Err(ParseError::UnknownFlag {
                    verb,
                    flag: w.as_bytes(),
                });
            } else if name.is_none() {
                name = Some(*w);
            } else {
                return Err(ParseError::ExtraArgument {
                    verb,
                    arg: w.as_bytes(),
                });
            }
        }
        Invocation::new(verb, name, flags)
    }

    /// Reads a request: `request = "repl/VERB"`, `resource = "NAME"`, flags as their keys
    /// (`force = 1`; any true value as `find_bool` reads it). Other keys are ignored; a set flag
    /// the verb does not take is refused.
    pub fn from_request(req: &Request<'a>) -> Result<Invocation<'a>, ParseError<'a>> {
        let name = req.name();
        let spec = VerbSpec::by_request(name).ok_or(ParseError::UnknownCommand(name))?;
        let verb = spec.verb;
        let mut flags = Flags::empty();
        if let Some(tree) = req.tree() {
            for f in Flag::ALL {
                let Some(key) = f.key() else { continue };
                if tree.find_bool(key, false) {
                    if !spec.takes(f) {
                        return Err(ParseError::UnknownFlag {
                            verb,
                            flag: key.as_bytes(),
                        });
                    }
                    flags = flags.with(f);
                }
            }
        }
        let resource = match req.str("resource") {
            Some(n) => resource_of(verb, n)?,
            None if spec.resource == ResourceArg::Optional => None,
            None => return Err(ParseError::MissingResource(verb)),
        };
        Ok(Invocation {
            verb,
            resource,
            flags,
        })
    }

    /// Whether `f` was given.
    pub const fn has(&self, f: Flag) -> bool {
        self.flags.has(f)
    }

    /// Its row.
    pub const fn spec(&self) -> &'static VerbSpec {
        self.verb.spec()
    }

    /// Writes the request body: `request`, `resource` (unless all), one `key = 1` per flag that
    /// travels.
    pub fn write_request(&self, out: &mut dyn Sink) -> Result<(), Overflow> {
        write_str_line(b"request", self.spec().request.as_bytes(), out)?;
        if let Some(r) = self.resource {
            write_str_line(b"resource", r.as_bytes(), out)?;
        }
        for f in self.flags.iter() {
            if let Some(key) = f.key() {
                write_int_line(key.as_bytes(), 1, out)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Invocation<'_> {
    /// The command line that gives this invocation back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb.name())?;
        if let Some(r) = self.resource {
            write!(f, " {r}")?;
        }
        for fl in self.flags.iter() {
            write!(f, " --{}", fl.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OwnedTree, ParseOptions};
    use std::string::ToString;
    use std::vec::Vec;

    fn parse(line: &str) -> Result<Invocation<'_>, ParseError<'_>> {
        let words: Vec<&str> = line.split_whitespace().collect();
        Invocation::parse(&words)
    }

    #[test]
    fn table_rows() {
        assert_eq!(TABLE.len(), 14);
        for s in TABLE {
            assert_eq!(s.verb.spec().name, s.name);
            assert_eq!(
                VerbSpec::find(s.name.as_bytes()).map(|x| x.verb),
                Some(s.verb)
            );
            assert_eq!(s.request, std::format!("repl/{}", s.name));
            assert!(!s.help.is_empty() && !s.help.ends_with('.'));
        }
        assert_eq!(
            Verb::Primary.spec().usage().to_string(),
            "primary RESOURCE [--force]"
        );
        assert_eq!(
            Verb::Status.spec().usage().to_string(),
            "status [RESOURCE|all] [--json]"
        );
        assert_eq!(Verb::Status.spec().drbd_op, Some(30));
    }

    #[test]
    fn words() {
        let p = parse("primary r0 --force").unwrap();
        assert_eq!(
            p,
            Invocation {
                verb: Verb::Primary,
                resource: Some("r0"),
                flags: Flags::empty().with(Flag::Force)
            }
        );
        assert_eq!(parse("primary --force r0"), Ok(p));
        assert_eq!(p.to_string(), "primary r0 --force");
        assert_eq!(parse("status").unwrap().resource, None);
        assert_eq!(parse("status all --json").unwrap().resource, None);
        assert!(parse("status all --json").unwrap().has(Flag::Json));
        assert_eq!(
            parse("status r.1_a-b+c").unwrap().resource,
            Some("r.1_a-b+c")
        );
        assert_eq!(
            parse("new-current-uuid r0 --clear-bitmap")
                .unwrap()
                .flags
                .iter()
                .collect::<Vec<_>>(),
            [Flag::ClearBitmap]
        );
        assert_eq!(
            parse("connect r0 --discard-my-data --discard-my-data")
                .unwrap()
                .to_string(),
            "connect r0 --discard-my-data"
        );
    }

    #[test]
    fn word_errors_say_what_and_how() {
        let msg = |l: &str| parse(l).unwrap_err().to_string();
        assert_eq!(Invocation::parse(&[]), Err(ParseError::NoCommand));
        assert_eq!(
            msg("promote r0"),
            "unknown command 'promote'; commands: up, down, primary, secondary, connect, \
             disconnect, attach, detach, invalidate, invalidate-remote, pause-sync, resume-sync, \
             new-current-uuid, status"
        );
        assert_eq!(
            msg("primary"),
            "primary: missing resource; usage: primary RESOURCE [--force]"
        );
        assert_eq!(
            msg("primary --force"),
            "primary: missing resource; usage: primary RESOURCE [--force]"
        );
        assert_eq!(
            msg("secondary r0 --force"),
            "secondary: unknown flag '--force'; usage: secondary RESOURCE"
        );
        assert_eq!(
            msg("primary r0 -f"),
            "primary: unknown flag '-f'; usage: primary RESOURCE [--force]"
        );
        assert_eq!(
            msg("down r0 r1"),
            "down: unexpected argument 'r1'; usage: down RESOURCE"
        );
        assert_eq!(
            msg("down all"),
            "down: takes one resource, not 'all'; usage: down RESOURCE"
        );
        assert_eq!(
            msg("attach a/b"),
            "attach: 'a/b' is not a resource name (1 to 63 of A-Z a-z 0-9 _ - . +, not starting with -)"
        );
        assert_eq!(
            parse("attach -").unwrap_err(),
            ParseError::BadResource {
                verb: Verb::Attach,
                name: b"-"
            }
        );
        let long = "x".repeat(64);
        assert!(matches!(
            parse(&std::format!("up {long}")),
            Err(ParseError::BadResource { .. })
        ));
        assert!(parse(&std::format!("up {}", &long[1..])).is_ok());
        assert!(matches!(
            Invocation::new(Verb::Down, Some("r0"), Flags::empty().with(Flag::Json)),
            Err(ParseError::UnknownFlag { .. })
        ));
    }

    fn tree_of(inv: &Invocation<'_>) -> OwnedTree {
        let mut body = Vec::new();
        inv.write_request(&mut body).unwrap();
        OwnedTree::from_text_owned(&body, ParseOptions::KEEP).unwrap()
    }

    #[test]
    fn request_round_trip_and_bytes() {
        let mut body = Vec::new();
        parse("primary r0 --force")
            .unwrap()
            .write_request(&mut body)
            .unwrap();
        assert_eq!(
            body,
            b"request = \"repl/primary\"\nresource = \"r0\"\nforce = 1\n"
        );
        body.clear();
        parse("status --json")
            .unwrap()
            .write_request(&mut body)
            .unwrap();
        assert_eq!(
            body, b"request = \"repl/status\"\n",
            "--json is the client's business"
        );
        for s in TABLE {
            let mut flags = Flags::empty();
            for &f in s.flags {
                if f.key().is_some() {
                    flags = flags.with(f);
                }
            }
            let inv = Invocation::new(s.verb, Some("r7"), flags).unwrap();
            let t = tree_of(&inv);
            let back = Invocation::from_request(&Request::new(Some(t.view()))).unwrap();
            assert_eq!(back, inv);
        }
    }

    #[test]
    fn request_errors() {
        let req = |text: &[u8]| OwnedTree::from_text_owned(text, ParseOptions::KEEP).unwrap();
        let t = req(b"request = \"repl/primary\"\n");
        assert_eq!(
            Invocation::from_request(&Request::new(Some(t.view()))),
            Err(ParseError::MissingResource(Verb::Primary))
        );
        let t = req(b"request = \"repl/secondary\"\nresource = \"r0\"\nforce = 1\n");
        assert_eq!(
            Invocation::from_request(&Request::new(Some(t.view()))),
            Err(ParseError::UnknownFlag {
                verb: Verb::Secondary,
                flag: b"force"
            })
        );
        let t = req(b"request = \"repl/primary\"\nresource = \"r 0\"\n");
        assert!(matches!(
            Invocation::from_request(&Request::new(Some(t.view()))),
            Err(ParseError::BadResource { .. })
        ));
        let t = req(b"request = \"repl/primary\"\nresource = \"r0\"\nforce = \"yes\"\nextra = 5\n");
        assert!(Invocation::from_request(&Request::new(Some(t.view())))
            .unwrap()
            .has(Flag::Force));
        let t = req(b"request = \"repl/primary\"\nresource = \"r0\"\nforce = 0\n");
        assert!(!Invocation::from_request(&Request::new(Some(t.view())))
            .unwrap()
            .has(Flag::Force));
        let t = req(b"request = \"repl/status\"\nresource = \"all\"\n");
        assert_eq!(
            Invocation::from_request(&Request::new(Some(t.view())))
                .unwrap()
                .resource,
            None
        );
        assert_eq!(
            Invocation::from_request(&Request::new(None)),
            Err(ParseError::UnknownCommand(b"NONE"))
        );
    }
}
