//! Resident-memory readings from /proc (Linux), for load reports and benchmarks.

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)).and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Current resident set size in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident set size in bytes since start or the last `reset_peak`.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux 4.0+).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// GPU memory held by this process (MiB granularity), from nvidia-smi; None
/// when it is not installed or lists nothing for us. libtorch's allocator
/// statistics are not reachable through tch, so this is the driver's view.
pub fn gpu_process_bytes() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let me = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (pid, mib) = l.split_once(',')?;
        (pid.trim() == me).then(|| mib.trim().parse::<u64>().ok().map(|m| m << 20)).flatten()
    })
}
