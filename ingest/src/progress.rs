//! How an import reports progress: the library calls a callback with
//! [`ProgressEvent`]s and never draws; the binary turns them into a bar
//! (`chess_cli::progress`). The callback may be called from two threads at
//! once (the DICOM walker and the writer), hence `Sync`.

/// What happened since the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The number of inputs (files, CSV rows) is known.
    Total(u64),
    /// More inputs than announced: an archive's members replace the archive.
    Grew(u64),
    /// This many more inputs are done (written, rejected, or done by an interrupted run).
    Advanced(u64),
    /// Running counts after an input was written or rejected.
    Counts { samples: u64, rejected: u64 },
    /// All inputs are done; the summary follows.
    Finished,
}

/// The callback an import reports to.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Sync);

/// A callback that ignores every event (library users without a display).
pub fn silent(_: ProgressEvent) {}
