//! The `main` of every tool: run the command, print the error chain once
//! as `<tool>: error: …` ([`render`]), map it to its exit code, and treat a closed
//! stdout (`| head`) as success.

use std::error::Error;
use std::process::ExitCode;

use crate::exit::{CliError, ExitClass};

/// Finds the class of a library error: each binary passes a function that
/// downcasts to its libraries' error types and calls their
/// [`crate::Classify`] impl.
pub type Classifier = fn(&(dyn Error + 'static)) -> Option<ExitClass>;

/// The exit class of `err`: the first link of its chain that is a
/// [`CliError`] or that `classify` knows; otherwise [`ExitClass::Runtime`].
pub fn exit_class_of(err: &anyhow::Error, classify: Classifier) -> ExitClass {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.class;
        }
        if let Some(class) = classify(cause) {
            return class;
        }
    }
    ExitClass::Runtime
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The error chain as one line, `outer: inner: …`, each cause once: a cause
/// whose text its outer message already holds (a `{source}` in a thiserror
/// message) is not repeated.
pub fn render(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs `command` and turns its result into the process exit code.
pub fn main_with(tool: &str, classify: Classifier, command: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match command() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: error: {}", render(&e));
            ExitCode::from(exit_class_of(&e, classify).code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct LibError;
    impl std::fmt::Display for LibError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("lib")
        }
    }
    impl Error for LibError {}

    fn classify(e: &(dyn Error + 'static)) -> Option<ExitClass> {
        e.downcast_ref::<LibError>().map(|_| ExitClass::Output)
    }

    #[test]
    fn the_first_classified_cause_wins() {
        let e = anyhow::Error::new(LibError).context("writing");
        assert_eq!(exit_class_of(&e, classify), ExitClass::Output);
        let e = anyhow::Error::new(CliError::usage("--size 0")).context("settings");
        assert_eq!(exit_class_of(&e, classify), ExitClass::Usage);
        assert_eq!(exit_class_of(&anyhow::anyhow!("unknown"), classify), ExitClass::Runtime);
    }

    #[derive(Debug)]
    struct Wrapping(std::io::Error);
    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "'/x/key': {}", self.0)
        }
    }
    impl Error for Wrapping {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Wrapping(io)).context("ingesting into out");
        assert_eq!(render(&e), "ingesting into out: '/x/key': No such file");
        let e = anyhow::Error::new(LibError).context("writing");
        assert_eq!(render(&e), "writing: lib");
    }

    #[test]
    fn broken_pipe_is_found_under_context() {
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("stdout");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
