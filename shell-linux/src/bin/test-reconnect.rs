//! `test-reconnect`: OVS's test-reconnect script language on standard input, the transcript on
//! standard output (ovs-sessions.md §2). Exit status 1 on a bad script, like `ovstest`.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use keelson_linux::testreconnect;

fn main() -> ExitCode {
    let stdin = io::stdin();
    let mut out = BufWriter::new(io::stdout().lock());
    let result = testreconnect::run(&mut stdin.lock(), &mut out);
    // The transcript up to the failing line is printed either way, as C's exit() flushes stdio.
    let flushed = out.flush();
    match result
        .map_err(|e| e.to_string())
        .and(flushed.map_err(|e| e.to_string()))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("test-reconnect: {msg}");
            ExitCode::FAILURE
        }
    }
}
