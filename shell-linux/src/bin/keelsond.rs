//! `keelsond`: Keelson's host agent. For now it loads and checks its configuration; the request
//! socket and the protocols it serves come with their own issues.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keelson_core::config::Lookup;
use keelson_linux::configcmd;
use keelson_linux::source::Source;

#[derive(Parser)]
#[command(name = "keelsond", version, about = "Keelson's host agent")]
struct Cli {
    /// Configuration file (config-tree text).
    #[arg(long, default_value = "/etc/keelson/keelsond.conf")]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let tree = match configcmd::load(&Source::new(Some(&cli.config)), configcmd::options(false)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let name =
        String::from_utf8_lossy(tree.view().find_str("agent/name", b"keelsond")).into_owned();
    tracing::info!(config = %cli.config.display(), %name, "configuration loaded");
    if !cli.check {
        tracing::warn!("no services configured yet; exiting");
    }
    ExitCode::SUCCESS
}
