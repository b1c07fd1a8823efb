//! Atomic file writes: a temporary file beside the target, synced, then a
//! rename, so a reader (or a crash) never sees half a file; and the one
//! exclusive lock that keeps two processes from writing one directory.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Test hook: SIGKILLs this process, as `kill -9` would, when the
/// environment variable `var` holds `value`. Lets crash tests stop a run at
/// an exact point instead of racing a timer.
pub fn kill_if(var: &str, value: usize) {
    if std::env::var(var).ok().and_then(|v| v.parse::<usize>().ok()) == Some(value) {
        // SAFETY: raising a signal on our own process has no memory-safety preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// An exclusive advisory lock (flock) on `DIR/.lock`, held until dropped.
/// The file holds the owner's pid, so a refused writer can name it; a lock
/// left by a killed process is released by the kernel, never stale.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir} is in use by another flipscope process (pid {pid}); wait for it to finish or stop it first")]
    Held { dir: PathBuf, pid: String },
    #[error("{}: cannot lock: {source}", dir.display())]
    Io { dir: PathBuf, source: std::io::Error },
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        let path = dir.join(".lock");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() { "unknown".to_string() } else { pid.trim().to_string() };
                return Err(LockError::Held { dir: dir.to_path_buf(), pid });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes through `write(tmp)` and renames `tmp` onto `path`.
pub fn atomic_write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temp_path(path);
    // Synced before the rename: after a crash the name points at the old
    // bytes or the whole new ones, never at a file the disk never got.
    if let Err(e) = write(&tmp).and_then(|()| Ok(File::open(&tmp)?.sync_all()?)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(path.parent());
    Ok(())
}

/// Makes a rename in `dir` durable (best effort: not every filesystem allows it).
pub fn sync_dir(dir: Option<&Path>) {
    let dir = dir.filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |tmp| Ok(std::fs::write(tmp, bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let err = atomic_write_with(&p, |_| anyhow::bail!("disk full")).unwrap_err();
        assert!(format!("{err:#}").contains("x.json"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}
