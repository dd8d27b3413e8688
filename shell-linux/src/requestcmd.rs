//! `keelctl request`: one request through the client library, the reply printed as text.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use keelson_core::daemon::message::{words, Reply};
use keelson_core::daemon::simple::{write_request, Arg};

use crate::configcmd::CmdError;
use crate::daemon::client::{self, parse_reply};

/// Where and how to send.
pub struct Request<'a> {
    /// The daemon's socket.
    pub socket: &'a Path,
    /// Connect and reply timeout.
    pub timeout: Duration,
    /// Protocol name the daemon must report.
    pub protocol: Option<&'a str>,
    /// Protocol version the daemon must report (0: any).
    pub version: i64,
    /// keelsond to start when nobody answers.
    pub autostart: Option<&'a Path>,
}

/// `key=value` → a typed argument, as `daemon_send_simple` types them.
pub fn parse_arg(s: &str) -> Result<(&str, Arg<'_>), CmdError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| CmdError(format!("{s}: arguments are key=value")))?;
    if k.is_empty() {
        return Err(CmdError(format!("{s}: empty key")));
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return Ok((k, Arg::Str(inner.as_bytes())));
    }
    Ok((k, v.parse::<i64>().map_or(Arg::Str(v.as_bytes()), Arg::Int)))
}

/// Sends `name` with `args`, prints the reply body; returns the exit status.
pub fn run(req: &Request<'_>, name: &str, args: &[String]) -> Result<u8, CmdError> {
    let parsed: Vec<(&str, Arg<'_>)> = args
        .iter()
        .map(|a| parse_arg(a))
        .collect::<Result<_, _>>()?;
    let sock = req.socket.display();
    let mut c = client::open(
        req.socket,
        req.timeout,
        req.protocol,
        req.version,
        req.autostart,
    )
    .map_err(|e| CmdError(format!("{sock}: {e}")))?;
    let mut body = Vec::new();
    let _ = write_request(name.as_bytes(), &parsed, &mut body);
    let reply = c
        .call_raw(&body)
        .map_err(|e| CmdError(format!("{sock}: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&reply);
    if !reply.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    // A raw reply (lvmpolld's dump) need not parse; only a parsed failure word changes the status.
    let failed = parse_reply(&reply)
        .map(|t| matches!(Reply::new(t.view()).response(), r if r == words::FAILED || r == words::INVALID))
        .unwrap_or(false);
    Ok(if failed { 2 } else { 0 })
}
