//! Limits on chat templates, which come with checkpoints and so may be
//! hostile. Every render runs with minijinja's fuel (an instruction budget:
//! nested loops end), a recursion limit and a cap on its output. Fuel does
//! not bound memory, though: a loop that doubles a string reaches gigabytes
//! in thirty steps. So a checkpoint's template is first rendered once on a
//! probe conversation in a forked child with an address-space and CPU limit;
//! if the child dies, the template is refused before it is ever used.

/// Instructions one render may execute (the Qwen2.5-VL template needs a few thousand).
pub const FUEL: u64 = 2_000_000;
/// Nested macro calls and includes.
pub const RECURSION: usize = 64;
/// Bytes one render may write: far above any prompt a model's context holds.
pub const MAX_OUTPUT: usize = 16 << 20;
/// Memory the probe render may add, and its CPU seconds.
const PROBE_MEMORY: u64 = 256 << 20;
const PROBE_CPU_SECONDS: u64 = 10;

/// A writer that fails once more than `MAX_OUTPUT` bytes were written.
pub struct CappedOutput {
    pub text: Vec<u8>,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other(format!("the chat template wrote more than {} MiB", MAX_OUTPUT >> 20)));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How the probe render in the child ended, when it did not succeed.
#[derive(Debug, PartialEq)]
pub enum ProbeFailure {
    /// The render returned an error (it may still be fine on real input).
    Error,
    /// The child was killed or aborted: out of memory or CPU time.
    Killed(i32),
}

/// Runs `render` in a forked child limited to `PROBE_MEMORY` more address
/// space and `PROBE_CPU_SECONDS` of CPU. Ok when it rendered.
pub fn probe(render: impl FnOnce() -> bool) -> Result<(), ProbeFailure> {
    let vm_bytes = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0);
    // SAFETY: fork has no memory-safety preconditions; the child only
    // renders (glibc's malloc is fork-safe) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // Cannot fork: fall back on the in-process limits alone.
        return Ok(());
    }
    if pid == 0 {
        // SAFETY: in the child; setrlimit, open and dup2 are async-signal-safe.
        unsafe {
            let mem = libc::rlimit { rlim_cur: vm_bytes + PROBE_MEMORY, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_AS, &mem);
            let cpu = libc::rlimit { rlim_cur: PROBE_CPU_SECONDS, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_CPU, &cpu);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 2);
            }
        }
        let ok = render();
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 3 }) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Ok(());
        }
    }
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            _ => Err(ProbeFailure::Error),
        }
    } else {
        Err(ProbeFailure::Killed(libc::WTERMSIG(status)))
    }
}
