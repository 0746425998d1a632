//! Logging set-up of every tool: library `tracing` events to stderr,
//! filtered by `CHESS_LOG` (an `EnvFilter` string; default `warn`, or
//! `error` with `--quiet`).

/// Installs the stderr subscriber once; later calls do nothing.
pub fn init(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
