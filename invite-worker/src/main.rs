//! `invite-worker`: runs the engine of the platform deployment. Parses the configuration,
//! installs logging and metrics, wires the parts and runs until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use invite_core::clock::SystemClock;
use invite_http::{init_tracing, observe, shutdown_signal};
use invite_worker::{Worker, WorkerConfig, WorkerOptions};

const HELP: &str = include_str!("help.txt");

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--help" || arg == "-h" {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "invite-worker: unknown argument {arg:?}; configuration is by environment (see --help)"
        );
        return ExitCode::from(2);
    }
    let config = match WorkerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invite-worker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.shared.log_format);
    let options = WorkerOptions {
        metrics: Some(observe::install_recorder()),
        ..WorkerOptions::new(Arc::new(SystemClock))
    };
    let worker = match Worker::build(&config, options).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("invite-worker: start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let admin = match tokio::net::TcpListener::bind(config.admin_addr).await {
        Ok(l) => l,
        Err(e) => {
            let addr = config.admin_addr;
            eprintln!("invite-worker: WORKER_ADMIN_ADDR: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = config.admin_addr;
    tracing::info!(worker = %worker.worker_id(), %addr, "invite-worker started; /health and /metrics on http://{addr}");
    match worker.run(admin, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invite-worker: admin server error: {e}");
            ExitCode::FAILURE
        }
    }
}
