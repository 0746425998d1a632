//! The `private/` directory's permissions, whatever the umask: the folder
//! 0700, its files 0600 (the journal, the run file, the reject list, the
//! burned-in contact sheet, the key). They name source files and quote
//! header values, so nobody else on the machine may read them.
//!
//! Every writer of a private file goes through [`create_dir`] and
//! [`create_file`] / [`write`]; on non-Unix systems they are the plain
//! `std::fs` calls.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Mode of the private folder.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every private file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) and sets it to 0700; an existing folder
/// is tightened to 0700 too.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Creates (or truncates) `path` for writing, mode 0600 from its first byte
/// (not umask-dependent: an existing file is set to 0600 as well).
pub fn create_file(path: &Path) -> std::io::Result<File> {
    open(path, false)
}

/// Opens `path` for appending (created 0600 when missing, set to 0600 when not).
pub fn append_file(path: &Path) -> std::io::Result<File> {
    open(path, true)
}

fn open(path: &Path, append: bool) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true);
    if append {
        opts.append(true);
    } else {
        opts.write(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, FILE_MODE);
    let f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

/// Writes `bytes` to `path` (mode 0600).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = create_file(path)?;
    f.write_all(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_are_0700_and_0600_even_over_looser_existing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/private");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let f = dir.join("x");
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&f, b"new").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        let j = dir.join("j");
        append_file(&j).unwrap().write_all(b"1").unwrap();
        append_file(&j).unwrap().write_all(b"2").unwrap();
        assert_eq!(std::fs::read(&j).unwrap(), b"12");
        assert_eq!(std::fs::metadata(&j).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
