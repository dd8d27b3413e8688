//! Serves one file or block device as an NBD export until interrupted.
//!
//! ```sh
//! cargo run -p keelson-linux --example nbd_serve -- --unix /tmp/nbd.sock --tcp 127.0.0.1:10809 \
//!     --name disk disk.img
//! qemu-img info 'nbd+unix:///disk?socket=/tmp/nbd.sock'
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use keelson_core::nbd::Config;
use keelson_linux::nbd::{Endpoint, ExportTable, FileBackend, Server};

#[derive(Parser)]
#[command(about = "Serve a file or block device as an NBD export")]
struct Args {
    /// Listen on this UNIX socket.
    #[arg(long)]
    unix: Option<PathBuf>,
    /// Listen on this TCP address (e.g. 127.0.0.1:10809; port 0 picks one).
    #[arg(long)]
    tcp: Option<SocketAddr>,
    /// Export name (empty: the default export).
    #[arg(long, default_value = "")]
    name: String,
    /// Refuse writes (NBD_FLAG_READ_ONLY, NBD_EPERM).
    #[arg(long)]
    read_only: bool,
    /// The file or block device.
    file: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if args.unix.is_none() && args.tcp.is_none() {
        return Err("give --unix PATH and/or --tcp ADDR".into());
    }
    let backend = FileBackend::open(&args.file, args.read_only)
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    let exports = ExportTable::new();
    exports.insert(&args.name, Arc::new(backend));
    let mut servers = Vec::new();
    let endpoints = args
        .unix
        .map(Endpoint::Unix)
        .into_iter()
        .chain(args.tcp.map(Endpoint::Tcp));
    for ep in endpoints {
        let server = Server::start(&ep, exports.clone(), Config::DEFAULT)
            .map_err(|e| format!("{ep:?}: {e}"))?;
        // Printed on stdout so scripts (and the benchmark) can read the chosen port.
        match server.endpoint() {
            Endpoint::Unix(p) => println!("unix {}", p.display()),
            Endpoint::Tcp(a) => println!("tcp {a}"),
        }
        servers.push(server);
    }
    loop {
        std::thread::park();
    }
}
