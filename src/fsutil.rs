//! Atomic file writes: a temporary file beside the target, synced, then a
//! rename, so a reader (or a crash) never sees half a file; and the one
//! exclusive lock that keeps two processes from writing one directory.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A limit in MiB from the environment variable `var`, else `default_mib`.
pub fn mib_limit(var: &str, default_mib: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(default_mib).saturating_mul(1 << 20)
}

/// The most bytes one whole-file read takes (images, configs, templates,
/// JSON datasets): `FLIPSCOPE_MAX_READ_MB`, 256 MiB by default.
pub fn max_read_bytes() -> u64 {
    mib_limit("FLIPSCOPE_MAX_READ_MB", 256)
}

/// What kind of thing a path is, for messages: "a FIFO", "a device", ...
pub fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a folder"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "something other than a regular file"
    }
}

/// Opens `path` for reading without ever blocking on it (a FIFO with no
/// writer would block a plain open) and returns it with its metadata.
fn open_nonblocking(path: &Path) -> std::io::Result<(File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Opens a regular file for reading; a FIFO, device, socket or folder is an
/// error saying which it is (reading one could hang or never end).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let (file, meta) = open_nonblocking(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {}; only regular files are read", kind_of(meta.file_type())),
        ));
    }
    Ok(file)
}

/// The whole of a regular file, refused when it is larger than `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_big(len, limit));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow while it is read: never take more than the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// [`read_regular`] with the default limit, as UTF-8 text.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = read_regular(path, max_read_bytes())?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 at line {line} (byte {at})"))
    })
}

/// [`read_text`], with a missing file as None (optional config files).
pub fn read_optional_text(path: &Path) -> anyhow::Result<Option<String>> {
    match read_text(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("{}: cannot read", path.display()))),
    }
}

/// Copies at most `limit` bytes of a stream (a pipe) to `out`; more is an error.
pub fn copy_capped(mut from: impl Read, out: &mut impl Write, limit: u64) -> std::io::Result<u64> {
    let n = std::io::copy(&mut (&mut from).take(limit + 1), out)?;
    if n > limit {
        return Err(too_big(n, limit));
    }
    Ok(n)
}

fn too_big(len: u64, limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("{len} bytes or more, over the limit of {} MiB (raise FLIPSCOPE_MAX_READ_MB to allow it)", limit >> 20),
    )
}

/// A fresh folder under the system temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

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
    #[error("{}: cannot lock: {cause}", dir.display())]
    Io { dir: PathBuf, cause: std::io::Error },
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let io = |cause| LockError::Io { dir: dir.to_path_buf(), cause };
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

/// `.NAME.tmp-PID.EXT` beside `path`: hidden, this process's, and with
/// the extension kept, so writers that pick a format by it (images, plots) still can.
fn temp_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!(".{stem}.tmp-{}{ext}", std::process::id()))
}

/// Where an output goes: a regular (or new) file, written through a
/// temporary and a rename; or a character device (/dev/null, a terminal),
/// written in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    File,
    Device,
}

/// What `path` is as an output. A FIFO is refused as the readers refuse
/// one: opening it to write waits for a reader, forever if none comes (and
/// probing for one would hand a waiting reader an early end). A folder, a
/// block device or a socket is refused too.
pub fn check_output(path: &Path) -> Result<OutputKind> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else { return Ok(OutputKind::File) };
    let ft = meta.file_type();
    if meta.is_file() {
        Ok(OutputKind::File)
    } else if ft.is_char_device() {
        Ok(OutputKind::Device)
    } else {
        anyhow::bail!("{}: is {}; only a file (or a new name) or a character device is written", path.display(), kind_of(ft))
    }
}

/// An output file named on the command line, checked when it is parsed
/// (before any work): it must not be a FIFO, a device or a folder.
pub fn output_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    check_output(&path).map_err(|e| format!("{e:#}"))?;
    Ok(path)
}

/// Writes through `write(tmp)` and renames `tmp` onto `path`.
pub fn atomic_write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    // A device cannot be replaced by a rename (and must not be: /dev/null is not ours).
    if check_output(path)? == OutputKind::Device {
        return write(path).with_context(|| format!("writing {}", path.display()));
    }
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

/// `t` as `2026-12-06-0012` (UTC, to the minute): a folder name a person can read.
pub fn minute_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02}-{:02}{:02}", rest / 3600, rest % 3600 / 60)
}

/// `parent/base`, or `parent/base-2`, `-3`, ... when that exists.
pub fn unused_path(parent: &Path, base: &str) -> std::path::PathBuf {
    let first = parent.join(base);
    if !first.exists() {
        return first;
    }
    (2..).map(|n| parent.join(format!("{base}-{n}"))).find(|p| !p.exists()).expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_stamps_read_as_dates() {
        let at = |secs: u64| minute_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01-0000");
        // 2026-12-06 00:12 UTC, and a leap day.
        assert_eq!(at(1_796_515_920), "2026-12-06-0012");
        assert_eq!(at(951_782_400 + 23 * 3600 + 59 * 60), "2000-02-29-2359");
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking_and_reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.png");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        let err = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("a device"), "{err}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 3 << 20]).unwrap();
        let err = read_regular(&big, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("over the limit of 1 MiB") && err.contains("FLIPSCOPE_MAX_READ_MB"), "{err}");
        assert_eq!(read_regular(&big, 4 << 20).unwrap().len(), 3 << 20);
        let mut sink = Vec::new();
        assert!(copy_capped(&[1u8; 10][..], &mut sink, 9).is_err());
        std::fs::write(&big, b"ok\n\xff").unwrap();
        assert!(read_text(&big).unwrap_err().to_string().contains("not UTF-8 at line 2"));
    }

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
        // The temporary keeps the extension, so writers that pick a format by it can write it.
        atomic_write_with(&dir.path().join("plot.png"), |tmp| {
            assert_eq!(tmp.extension().and_then(|e| e.to_str()), Some("png"));
            Ok(std::fs::write(tmp, b"png")?)
        })
        .unwrap();
        // A folder in the way is refused by name, before anything is written.
        let err = format!("{:#}", atomic_write(dir.path().join("sub").as_path(), b"x").unwrap_err());
        assert!(err.contains("is a folder; only a file"), "{err}");
        // A device is written in place, never replaced by a rename.
        atomic_write(Path::new("/dev/null"), b"gone").unwrap();
        assert_eq!(check_output(Path::new("/dev/null")).unwrap(), OutputKind::Device);
        let err = format!("{:#}", atomic_write(Path::new("/dev/full"), b"x").unwrap_err());
        assert!(err.contains("writing /dev/full") && err.contains("No space left"), "{err}");
    }
}
