//! Device selection: `auto | cpu | cuda | cuda:N`, and the default dtype for
//! each (bf16 on CUDA, f32 on CPU).

use anyhow::{bail, Result};
use std::path::Path;
use std::sync::OnceLock;
use tch::{Device, Kind};

/// libtorch's CUDA half, loaded on first need. It is not linked: with the
/// CUDA libraries it pulls in it costs ~340 MB of resident memory, which a
/// CPU-only run should not pay. Loading it registers libtorch's CUDA hooks
/// and kernels, so this must run before anything asks libtorch about CUDA
/// (libtorch caches the answer). `Err` says why it could not be loaded.
pub fn load_cuda_runtime() -> &'static std::result::Result<(), String> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(|| {
        // The plain name first, so LD_LIBRARY_PATH can point at another torch
        // (the GPU recipe does); then the torch this binary was built against.
        let built = Path::new(option_env!("FLIPSCOPE_LIBTORCH_DIR").unwrap_or("")).join("lib").join("libtorch_cuda.so");
        let mut errors = Vec::new();
        for candidate in [Path::new("libtorch_cuda.so"), built.as_path()] {
            // SAFETY: libtorch_cuda's initialisers only register CUDA kernels
            // and hooks with the libtorch_cpu already loaded; it is never unloaded.
            match unsafe {
                libloading::os::unix::Library::open(Some(candidate), libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL)
            } {
                Ok(lib) => {
                    std::mem::forget(lib);
                    return Ok(());
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!("libtorch_cuda.so could not be loaded ({})", errors.join("; ")))
    })
}

/// Whether this machine may have an NVIDIA GPU: the driver's device nodes.
/// `auto` loads the CUDA runtime only then.
fn gpu_may_be_present() -> bool {
    ["/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version"].iter().any(|p| Path::new(p).exists())
}

/// Loads the CUDA runtime where a GPU may be present; the binary calls this
/// first thing, so no libtorch call can come before it.
pub fn load_cuda_runtime_if_gpu() {
    if gpu_may_be_present() {
        let _ = load_cuda_runtime();
    }
}

/// CUDA when a GPU is usable, else the CPU.
pub fn auto() -> Device {
    if gpu_may_be_present() && load_cuda_runtime().is_ok() {
        Device::cuda_if_available()
    } else {
        Device::Cpu
    }
}

pub fn parse(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    Ok(match s.as_str() {
        "auto" => auto(),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => cuda(0)?,
        _ => match s.strip_prefix("cuda:") {
            Some(n) => cuda(n.parse().map_err(|_| anyhow::anyhow!("device `{spec}`: `{n}` is not a GPU index"))?)?,
            None => bail!("device `{spec}` is not auto, cpu, cuda or cuda:N"),
        },
    })
}

fn cuda(i: usize) -> Result<Device> {
    if let Err(e) = load_cuda_runtime() {
        bail!("device cuda:{i} asked for, but {e}");
    }
    let n = tch::Cuda::device_count() as usize;
    if i >= n {
        bail!("device cuda:{i} asked for, but {n} CUDA device(s) are visible");
    }
    Ok(Device::Cuda(i))
}

pub fn default_kind(device: Device) -> Kind {
    match device {
        Device::Cuda(_) => Kind::BFloat16,
        _ => Kind::Float,
    }
}

/// `--dtype auto|f32|bf16|f16`: `auto` is bf16 on CUDA and f32 on CPU.
pub fn parse_dtype(spec: &str, device: Device) -> Result<Kind> {
    Ok(match spec.trim().to_ascii_lowercase().as_str() {
        "auto" => default_kind(device),
        "f32" | "float32" | "float" => Kind::Float,
        "bf16" | "bfloat16" => Kind::BFloat16,
        "f16" | "float16" | "half" => Kind::Half,
        _ => bail!("dtype `{spec}` is not auto, f32, bf16 or f16"),
    })
}

/// The libtorch version, read from the torch package flipscope was built
/// against (tch exposes no version call).
pub fn libtorch_version() -> String {
    let dir = option_env!("FLIPSCOPE_LIBTORCH_DIR").unwrap_or("");
    std::fs::read_to_string(std::path::Path::new(dir).join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("__version__").map(|r| r.trim_start_matches([' ', '=']).trim().trim_matches('\'').to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// One line per CUDA device: name and memory (from nvidia-smi when present).
pub fn cuda_devices() -> Vec<String> {
    if load_cuda_runtime().is_err() {
        return Vec::new();
    }
    let n = tch::Cuda::device_count();
    let smi = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    (0..n as usize)
        .map(|i| match smi.get(i) {
            Some(line) => format!("cuda:{i}: {line}"),
            None => format!("cuda:{i}: (nvidia-smi unavailable: name and memory unknown)"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!(parse("cpu").unwrap(), Device::Cpu);
        assert!(parse("tpu").unwrap_err().to_string().contains("not auto, cpu, cuda or cuda:N"));
        assert!(parse("cuda:x").unwrap_err().to_string().contains("not a GPU index"));
        if !tch::Cuda::is_available() {
            assert_eq!(parse("auto").unwrap(), Device::Cpu);
            assert!(parse("cuda:0").unwrap_err().to_string().contains("0 CUDA device"));
        }
        assert_eq!(default_kind(Device::Cpu), Kind::Float);
        assert_eq!(default_kind(Device::Cuda(0)), Kind::BFloat16);
        assert_eq!(parse_dtype("auto", Device::Cuda(0)).unwrap(), Kind::BFloat16);
        assert_eq!(parse_dtype("auto", Device::Cpu).unwrap(), Kind::Float);
        assert_eq!(parse_dtype("BF16", Device::Cpu).unwrap(), Kind::BFloat16);
        assert!(parse_dtype("int8", Device::Cpu).unwrap_err().to_string().contains("not auto, f32, bf16 or f16"));
    }

    /// The CUDA half of libtorch loads and registers itself: asking for a
    /// CUDA tensor then fails on the missing driver or device, not on a
    /// missing CUDA build (which is what an unregistered libtorch says).
    #[test]
    fn cuda_runtime_loads_and_registers() {
        let built = Path::new(env!("FLIPSCOPE_LIBTORCH_DIR")).join("lib/libtorch_cuda.so");
        if !built.exists() {
            return; // a CPU-only libtorch: nothing to load
        }
        assert_eq!(load_cuda_runtime(), &Ok(()));
        if tch::Cuda::is_available() {
            assert!(tch::Tensor::f_zeros([1], (Kind::Float, Device::Cuda(0))).is_ok());
        } else {
            let err = tch::Tensor::f_zeros([1], (Kind::Float, Device::Cuda(0))).unwrap_err().to_string();
            assert!(!err.contains("ATen_cuda") && !err.contains("'CUDA' backend"), "CUDA kernels not registered: {err}");
            assert!(parse("cuda").unwrap_err().to_string().contains("0 CUDA device"));
        }
    }

    #[test]
    fn reads_libtorch_version() {
        assert!(libtorch_version().starts_with("2.11"), "{}", libtorch_version());
    }
}
