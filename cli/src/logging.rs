//! Logging set-up of every tool: library `tracing` events to stderr,
//! filtered by `CHESS_LOG` (an `EnvFilter` string; default `warn`, or
//! `error` with `--quiet`).
//!
//! Events of the CheSS crates (targets `chess_*`) are printed as they are:
//! they never carry an input value. Events of third-party crates are reduced
//! to their kind — level, target and the source line that emitted them —
//! because their text may quote what they read (dicom-rs warns with an
//! unsupported SpecificCharacterSet value verbatim, for example), and a
//! header value on stderr is a header value in a shared job log.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether events of `target` are printed in full.
pub fn is_ours(target: &str) -> bool {
    target.starts_with("chess_") || target == "chess"
}

/// The line printed for a third-party event: its kind, never its text.
pub fn kind_line(level: &tracing::Level, target: &str, file: Option<&str>, line: Option<u32>) -> String {
    let at = match (file, line) {
        (Some(f), Some(l)) => format!(" at {}:{l}", f.rsplit('/').next().unwrap_or(f)),
        _ => String::new(),
    };
    format!("{level:>5} {target}: a {level} from a library{at} (its text is not shown: it may quote an input value)")
}

/// The default format for our events, [`kind_line`] for the others.
struct Redacting(Format<Full>);

impl<S, N> FormatEvent<S, N> for Redacting
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if is_ours(meta.target()) {
            return self.0.format_event(ctx, writer, event);
        }
        writeln!(writer, "{}", kind_line(meta.level(), meta.target(), meta.file(), meta.line()))
    }
}

/// Installs the stderr subscriber once; later calls do nothing.
pub fn init(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Redacting(format::format()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_party_events_keep_only_their_kind() {
        assert!(is_ours("chess_ingest::run"));
        assert!(!is_ours("dicom_parser::stateful::decode"));
        let l = kind_line(
            &tracing::Level::WARN,
            "dicom_parser::stateful::decode",
            Some("/x/dicom-parser-0.10.1/src/stateful/decode.rs"),
            Some(926),
        );
        assert_eq!(
            l,
            " WARN dicom_parser::stateful::decode: a WARN from a library at decode.rs:926 (its text is not shown: it may quote an input value)"
        );
    }
}
