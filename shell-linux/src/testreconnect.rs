//! `test-reconnect`: Open vSwitch's test-reconnect script language (tests/test-reconnect.c) over
//! [`keelson_core::reconnect`]: a script on input, the C program's transcript on output, byte for
//! byte (ovs-sessions.md §2).

use std::fmt;
use std::io::{self, BufRead, Write};

use keelson_core::reconnect::{Action, Reconnect, Stats, EOF, RECEIVE_GUARD_OFF};

/// fgets' buffer is 128 bytes, so a line is read in pieces of at most 127 (§2.2).
const FGETS_MAX: usize = 127;

/// Why a script stopped early. [`Error::Fatal`] is the C program's `ovs_fatal`: exit status 1.
#[derive(Debug)]
pub enum Error {
    /// Reading the script or writing the transcript failed.
    Io(io::Error),
    /// An unknown command, wrong argument count or bad argument; the message says which.
    Fatal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Fatal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Runs a whole script from `input`, writing the transcript to `out`.
pub fn run(input: &mut impl BufRead, out: &mut impl Write) -> Result<(), Error> {
    Driver::new().run(input, out)
}

/// The program state of §2.1: C's `int` clock, the FSM, and what was last reported.
struct Driver {
    now: i32,
    fsm: Reconnect,
}

impl Driver {
    fn new() -> Self {
        let now = 1000;
        Driver {
            now,
            fsm: Reconnect::new(i64::from(now)),
        }
    }

    fn run(&mut self, input: &mut impl BufRead, out: &mut impl Write) -> Result<(), Error> {
        let mut prev = self.fsm.stats(i64::from(self.now));
        writeln!(out, "### t={} ###", self.now)?;
        let mut old_time = self.now;
        let mut old_max_tries = self.fsm.max_tries();
        let mut line = Vec::with_capacity(FGETS_MAX);
        while read_fgets(input, &mut line)? {
            // fputs and the word parser see a C string: everything up to a NUL.
            let text = match line.iter().position(|&b| b == 0) {
                Some(nul) => &line[..nul],
                None => &line[..],
            };
            out.write_all(text)?;
            if text.first() == Some(&b'#') {
                continue;
            }
            let words = parse_words(text);
            if let Some((cmd, args)) = words.split_first() {
                self.command(cmd, args, out)?;
            }
            if self.now != old_time {
                write!(out, "\n### t={} ###\n", self.now)?;
            }
            let cur = self.fsm.stats(i64::from(self.now));
            diff_stats(out, &prev, &cur, self.now.wrapping_sub(old_time))?;
            prev = cur;
            if self.fsm.max_tries() != old_max_tries {
                old_max_tries = self.fsm.max_tries();
                writeln!(out, "  {old_max_tries} tries left")?;
            }
            old_time = self.now;
        }
        Ok(())
    }

    fn command(&mut self, cmd: &str, args: &[String], out: &mut impl Write) -> Result<(), Error> {
        // (name, min args, max args), as test-reconnect.c's command table.
        const TABLE: &[(&str, usize, usize)] = &[
            ("enable", 0, 0),
            ("disable", 0, 0),
            ("force-reconnect", 0, 0),
            ("disconnected", 0, 1),
            ("connecting", 0, 0),
            ("connect-failed", 0, 1),
            ("connected", 0, 0),
            ("activity", 0, 0),
            ("run", 0, 1),
            ("advance", 1, 1),
            ("timeout", 0, 0),
            ("set-max-tries", 1, 1),
            ("set-backoff-free-tries", 1, 1),
            ("passive", 0, 0),
            ("listening", 0, 0),
            ("listen-error", 1, 1),
            ("receive-attempted", 1, 1),
        ];
        let Some(&(_, min, max)) = TABLE.iter().find(|(name, _, _)| *name == cmd) else {
            return Err(Error::Fatal(format!(
                "unknown command '{cmd}'; use --help for help"
            )));
        };
        if args.len() < min {
            return Err(Error::Fatal(format!(
                "'{cmd}' command requires at least {min} arguments"
            )));
        }
        if args.len() > max {
            return Err(Error::Fatal(format!(
                "'{cmd}' command takes at most {max} arguments"
            )));
        }
        let now = i64::from(self.now);
        let arg = args.first().map(String::as_str);
        let f = &mut self.fsm;
        match cmd {
            "enable" => f.enable(now),
            "disable" => f.disable(now),
            "force-reconnect" => f.force_reconnect(now),
            "disconnected" => f.disconnected(now, error_code(arg)?),
            "connecting" => f.connecting(now),
            "connect-failed" => f.connect_failed(now, error_code(arg)?),
            "connected" => f.connected(now),
            "activity" => f.activity(now),
            "run" => {
                if let Some(ms) = arg {
                    self.now = self.now.wrapping_add(atoi(ms));
                }
                let said = match self.fsm.run(i64::from(self.now)) {
                    Some(Action::Connect) => "  should connect\n",
                    Some(Action::Disconnect) => "  should disconnect\n",
                    Some(Action::Probe) => "  should send probe\n",
                    None => "",
                };
                out.write_all(said.as_bytes())?;
            }
            "advance" => self.now = self.now.wrapping_add(atoi(arg.unwrap_or_default())),
            "timeout" => match f.timeout(now) {
                // Bounded by i32::MAX (C's int result), so the conversion is exact.
                Some(t) => {
                    writeln!(out, "  advance {t} ms")?;
                    self.now = self.now.wrapping_add(t as i32);
                }
                None => writeln!(out, "  no timeout")?,
            },
            // C passes atoi's int to an unsigned parameter: -1 is UINT_MAX (unlimited).
            "set-max-tries" => f.set_max_tries(atoi(arg.unwrap_or_default()) as u32),
            "set-backoff-free-tries" => {
                f.set_backoff_free_tries(atoi(arg.unwrap_or_default()) as u32)
            }
            "passive" => f.set_passive(true, now),
            "listening" => f.listening(now),
            "listen-error" => f.listen_error(now, atoi(arg.unwrap_or_default())),
            "receive-attempted" => match arg.unwrap_or_default() {
                "now" => f.receive_attempted(now),
                "LLONG_MAX" => f.receive_attempted(RECEIVE_GUARD_OFF),
                other => return Err(Error::Fatal(format!("{cmd}: bad argument {other}"))),
            },
            _ => unreachable!("every name in TABLE has an arm"),
        }
        Ok(())
    }
}

/// `ECONNREFUSED` (Linux 111) or `EOF` (−1); absent means 0; anything else is fatal (§2.3).
fn error_code(arg: Option<&str>) -> Result<i32, Error> {
    match arg {
        None => Ok(0),
        Some("ECONNREFUSED") => Ok(111),
        Some("EOF") => Ok(EOF),
        Some(other) => Err(Error::Fatal(format!("unknown error '{other}'"))),
    }
}

/// The six diff lines of §2.2 step 5, in order, each with C's trigger condition. The `unsigned`
/// fields compare in wrapping u32 arithmetic, sentinels as C prints them.
fn diff_stats(out: &mut impl Write, old: &Stats, new: &Stats, delta: i32) -> io::Result<()> {
    const NEVER: i64 = i64::MAX;
    let delta = delta as u32;
    // "Did not simply age by delta", ignored when both sides hold `unset` (§2.2 step 5).
    let drifted =
        |o: u32, n: u32, unset: u32| o != n.wrapping_sub(delta) && !(o == unset && n == unset);
    let since = |v: Option<u32>| v.unwrap_or(u32::MAX);
    if old.state != new.state
        || old.state_elapsed != new.state_elapsed
        || old.backoff != new.backoff
    {
        writeln!(
            out,
            "  in {} for {} ms ({} ms backoff)",
            new.state.name(),
            new.state_elapsed,
            new.backoff
        )?;
    }
    if old.creation_time != new.creation_time
        || old.last_activity != new.last_activity
        || old.last_connected != new.last_connected
    {
        writeln!(
            out,
            "  created {}, last activity {}, last connected {}",
            new.creation_time,
            new.last_activity,
            new.last_connected.unwrap_or(NEVER)
        )?;
    }
    if old.n_successful_connections != new.n_successful_connections
        || old.n_attempted_connections != new.n_attempted_connections
        || old.seqno != new.seqno
    {
        writeln!(
            out,
            "  {} successful connections out of {} attempts, seqno {}",
            new.n_successful_connections, new.n_attempted_connections, new.seqno
        )?;
    }
    if old.is_connected != new.is_connected {
        writeln!(
            out,
            "  {}",
            if new.is_connected {
                "connected"
            } else {
                "disconnected"
            }
        )?;
    }
    let (oc, nc) = (since(old.msec_since_connect), since(new.msec_since_connect));
    let (ot, nt) = (old.total_connected_duration, new.total_connected_duration);
    if old.last_connected != new.last_connected || drifted(oc, nc, u32::MAX) || drifted(ot, nt, 0) {
        writeln!(out, "  last connected {nc} ms ago, connected {nt} ms total")?;
    }
    let (od, nd) = (
        since(old.msec_since_disconnect),
        since(new.msec_since_disconnect),
    );
    if old.last_disconnected != new.last_disconnected || drifted(od, nd, u32::MAX) {
        writeln!(
            out,
            "  disconnected at {} ms ({nd} ms ago)",
            new.last_disconnected.unwrap_or(NEVER)
        )?;
    }
    Ok(())
}

/// fgets into a 128-byte buffer: up to and including a newline, at most 127 bytes. Returns false
/// at end of input with nothing read.
fn read_fgets(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    while line.len() < FGETS_MAX {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let room = FGETS_MAX - line.len();
        let take = &buf[..buf.len().min(room)];
        let (n, done) = match take.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (take.len(), false),
        };
        line.extend_from_slice(&take[..n]);
        input.consume(n);
        if done {
            break;
        }
    }
    Ok(!line.is_empty())
}

/// C's isspace in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// OVS's `svec_parse_words`: whitespace-separated words, where '…' and "…" quote and a backslash
/// escapes the next byte (outside quotes and inside "…"). Bytes are kept as they are; non-UTF-8
/// is replaced only for matching and messages.
fn parse_words(text: &[u8]) -> Vec<String> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && is_c_space(text[i]) {
            i += 1;
        }
        if i == text.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote = 0u8;
        while i < text.len() {
            let c = text[i];
            i += 1;
            if quote != 0 && c == quote {
                quote = 0;
            } else if quote == 0 && (c == b'\'' || c == b'"') {
                quote = c;
            } else if c == b'\\' && (quote == 0 || quote == b'"') {
                match text.get(i) {
                    Some(&next) => {
                        word.push(next);
                        i += 1;
                    }
                    None => break,
                }
            } else if quote == 0 && is_c_space(c) {
                break;
            } else {
                word.push(c);
            }
        }
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    words
}

/// glibc's `atoi`: `(int) strtol(s, NULL, 10)` — leading space, a sign, digits, the rest ignored;
/// strtol saturates at the `long` range, then the cast to `int` truncates.
fn atoi(s: &str) -> i32 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let negative = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut value: i64 = 0;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        let digit = i64::from(d - b'0');
        value = if negative {
            value.saturating_mul(10).saturating_sub(digit)
        } else {
            value.saturating_mul(10).saturating_add(digit)
        };
        i += 1;
    }
    value as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(script: &str) -> String {
        let mut out = Vec::new();
        run(&mut script.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn atoi_like_glibc() {
        assert_eq!(atoi("  42x"), 42);
        assert_eq!(atoi("-1"), -1);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("+7"), 7);
        assert_eq!(atoi("4294967297"), 1, "strtol then truncation to int");
    }

    #[test]
    fn words() {
        assert_eq!(parse_words(b"  run  500\n"), ["run", "500"]);
        assert_eq!(
            parse_words(b"a 'b c' \"d\\\"e\" f\\ g"),
            ["a", "b c", "d\"e", "f g"]
        );
        assert!(parse_words(b" \t\n").is_empty());
    }

    #[test]
    fn long_lines_are_split_like_fgets() {
        let mut input = &[b'x'; 300][..];
        let mut line = Vec::new();
        let mut lens = Vec::new();
        while read_fgets(&mut input, &mut line).unwrap() {
            lens.push(line.len());
        }
        assert_eq!(lens, [127, 127, 46]);
    }

    #[test]
    fn header_and_comment() {
        assert_eq!(
            transcript("# hi\n\nenable\n"),
            "### t=1000 ###\n# hi\n\nenable\n  in BACKOFF for 0 ms (0 ms backoff)\n"
        );
    }

    #[test]
    fn fatal_errors() {
        for bad in [
            "frobnicate\n",
            "advance\n",
            "run 1 2\n",
            "disconnected EPIPE\n",
            "receive-attempted 5\n",
        ] {
            let mut out = Vec::new();
            assert!(
                matches!(run(&mut bad.as_bytes(), &mut out), Err(Error::Fatal(_))),
                "{bad}"
            );
            assert!(
                out.ends_with(bad.as_bytes()),
                "the line is echoed before the error"
            );
        }
    }
}
