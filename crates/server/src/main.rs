//! `cairn-server`: the command line over the cairn-server library.
//!
//! Exit codes: 0 success; 1 the command failed (configuration, database, certificate,
//! address in use...); 2 the command line was wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn_server::config::LogFormat;
use clap::{Parser, Subcommand};

/// Cairn's blind relay: keeps the office's signed roster, stores and serves sealed
/// changes it cannot read.
#[derive(Parser)]
#[command(name = "cairn-server", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a server directory: server.toml, a self-signed TLS certificate, the database.
    /// Prints the certificate's SHA-256 fingerprint (also written to DIR/fingerprint).
    Init {
        /// The server directory to create.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The office's public keys, as written by `cairn office pubkey`.
        #[arg(long, value_name = "FILE")]
        office_key: PathBuf,
        /// Address and port to listen on (port 0: a port free now, chosen and saved).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// A postgres:// URL, or an SQLite file (default: DIR/server.db).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Serve until SIGINT or SIGTERM, then finish requests in flight. Writes the bound
    /// address to DIR/listening.
    Run {
        /// The server directory made by `init`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Use this database instead of the configured one.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// Copy the SQLite database to FILE while the server may be running (SQLite's online
    /// backup), checked and synced; FILE must not exist. A PostgreSQL database is refused:
    /// back it up with pg_dump (see docs/RELIABILITY.md).
    Backup {
        /// The server directory made by `init`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Where to write the copy (never replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Say what was written as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` reads its log format from its server.toml too; a file that does not load is
    // reported by `run` itself, after logging starts in the default format.
    let configured = match &cli.command {
        Command::Run { dir, .. } => cairn_server::ServerConfig::load(dir)
            .ok()
            .and_then(|c| c.log_format),
        _ => None,
    };
    let env = std::env::var("CAIRN_LOG_FORMAT").ok();
    let format = match LogFormat::choose(env.as_deref(), configured) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("cairn-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn-server: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init {
                dir,
                office_key,
                listen,
                database,
            } => {
                let chosen = cairn_server::init::choose_port(listen)?;
                let made = cairn_server::init::init(&dir, &office_key, chosen, database).await?;
                println!("{}", made.fingerprint);
                if chosen != listen {
                    eprintln!(
                        "port 0 asked for: chose the free port {}, saved in server.toml so that admissions naming {chosen} keep working after a restart",
                        chosen.port()
                    );
                }
                eprintln!(
                    "created {}; the line above is the certificate fingerprint for admissions; start with: cairn-server run --dir {}",
                    made.config_path.display(),
                    dir.display()
                );
                Ok(())
            }
            Command::Run { dir, database } => {
                cairn_server::serve::run(&dir, database.as_deref()).await
            }
            Command::Backup { dir, out, json } => {
                let done = cairn_server::backup::backup(&dir, &out)?;
                if json {
                    let text = serde_json::to_string(&done)
                        .map_err(|e| cairn_server::ServerError::Config(e.to_string()))?;
                    println!("{text}");
                } else {
                    eprintln!(
                        "backed up {} to {} ({} bytes); restore by stopping the server and putting it in the database's place",
                        done.database.display(),
                        done.out.display(),
                        done.bytes
                    );
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn-server: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr as `key=value` lines, or JSON objects; `CAIRN_LOG` sets the filter
/// (default `info`).
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A line it cannot write (a full disk under the log) is lost, quietly: the fallback
        // report is an `eprintln!`, which panics on the same full disk and took the request
        // down with it (the client saw the connection close instead of "disk is full").
        .log_internal_errors(false);
    match format {
        // Fields at the top level of each object, as log collectors index them.
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
