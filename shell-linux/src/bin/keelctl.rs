//! `keelctl`: Keelson's operator tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keelson_linux::configcmd::{self, options};
use keelson_linux::source::Source;

#[derive(Parser)]
#[command(name = "keelctl", version, about = "Keelson's operator tool")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Config-tree files (libdevmapper's dm_config text format).
    #[command(subcommand)]
    Config(ConfigCmd),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the canonical form, exactly as libdevmapper writes it.
    Fmt {
        /// Keep duplicate keys (libdaemon's parse) instead of merging them (dm_config_from_string).
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: Option<PathBuf>,
    },
    /// Print the value at a `/`-separated path.
    Get {
        /// Keep duplicate keys; the first one answers.
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: PathBuf,
        /// Path such as `devices/filter`.
        path: String,
    },
    /// Convert text to the compact binary (postcard) form on standard output.
    Encode {
        /// Keep duplicate keys.
        #[arg(long)]
        no_dup_check: bool,
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
    /// Convert the binary form back to canonical text.
    Decode {
        /// Input file, `-` for standard input.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Config(c) => match c {
            ConfigCmd::Fmt { no_dup_check, file } => {
                configcmd::fmt(&Source::new(file.as_deref()), options(no_dup_check))
            }
            ConfigCmd::Get {
                no_dup_check,
                file,
                path,
            } => configcmd::get(&Source::new(Some(&file)), &path, options(no_dup_check)),
            ConfigCmd::Encode { no_dup_check, file } => {
                configcmd::encode(&Source::new(Some(&file)), options(no_dup_check))
            }
            ConfigCmd::Decode { file } => configcmd::decode(&Source::new(Some(&file))),
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
