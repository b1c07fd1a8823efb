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

/// Memory the device can still give: MemAvailable for the CPU, the
/// driver's free memory (nvidia-smi) for a GPU; None when neither can be read.
pub fn available_bytes(device: tch::Device) -> Option<u64> {
    match device {
        tch::Device::Cuda(i) => {
            let out = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", &i.to_string()])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().ok().map(|mib| mib << 20)
        }
        _ => {
            let text = std::fs::read_to_string("/proc/meminfo").ok()?;
            let kib =
                text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
            Some(kib * 1024)
        }
    }
}

/// A request refused before allocating because its estimate exceeds what
/// the device has: the eval runner ends the run on it instead of writing
/// one error record per question.
#[derive(Debug)]
pub struct DoesNotFit(pub String);

impl std::fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DoesNotFit {}

/// What decoding `sequences` continuations of `tokens` positions each
/// holds: every layer's keys and values (`elem` bytes each), and the f32
/// logits of each row twice over (scores and their softmax).
pub fn decoding_bytes(text: &super::config::TextConfig, sequences: u64, tokens: u64, elem: u64) -> u64 {
    let kv = text.num_hidden_layers as u64 * 2 * text.num_key_value_heads as u64 * text.head_dim() as u64 * elem;
    sequences.saturating_mul(tokens.saturating_mul(kv).saturating_add(2 * 4 * text.vocab_size as u64))
}

/// Refuses `bytes` for `what` when the device has less available.
pub fn check_fits(what: &str, bytes: u64, device: tch::Device) -> Result<(), DoesNotFit> {
    match available_bytes(device) {
        Some(free) if bytes > free => Err(DoesNotFit(format!(
            "{what} needs about {:.2} GiB for its KV cache and logits; the {} has {:.2} GiB available: ask for fewer",
            gib(bytes),
            match device {
                tch::Device::Cuda(i) => format!("GPU {i}"),
                _ => "machine".to_string(),
            },
            gib(free)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_larger_than_the_machine_is_refused_with_its_estimate() {
        let text = crate::engine::config::TextConfig {
            vocab_size: 151_936,
            hidden_size: 2048,
            intermediate_size: 11_008,
            num_hidden_layers: 36,
            num_attention_heads: 16,
            num_key_value_heads: 2,
            rms_norm_eps: 1e-6,
            rope_theta: 1e6,
            mrope_section: vec![16, 24, 24],
            hidden_act: "silu".into(),
            max_position_embeddings: None,
        };
        // Qwen2.5-VL-3B in bf16: 36 layers x 2 x 2 heads x 128 x 2 bytes = 36 KiB a position.
        assert_eq!(decoding_bytes(&text, 1, 1, 2), 36 * 1024 + 8 * 151_936);
        let huge = decoding_bytes(&text, 100_000, 2048, 2);
        let err = check_fits("100000 sampled answers", huge, tch::Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("100000 sampled answers needs about") && err.contains("GiB available"), "{err}");
        assert!(check_fits("one answer", decoding_bytes(&text, 1, 64, 2), tch::Device::Cpu).is_ok());
    }
}
