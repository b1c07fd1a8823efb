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

/// Where and in what precision a command runs the model: the one
/// `--device` and `--dtype` every model-using command flattens in.
#[derive(clap::Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// auto (bf16 on CUDA, f32 on CPU) | f32 | bf16 | f16
    #[arg(long, value_enum, default_value_t)]
    pub dtype: DtypeSpec,
}

impl Placement {
    /// The CPU, f32 (what `auto` picks there).
    pub fn cpu() -> Placement {
        Placement { device: DeviceSpec::Cpu, dtype: DtypeSpec::Auto }
    }

    /// The device (`auto` resolved) and the dtype for it.
    pub fn resolve(&self) -> Result<(Device, Kind)> {
        let device = self.device.resolve()?;
        Ok((device, self.dtype.resolve(device)))
    }
}

/// `--device auto|cpu|cuda|cuda:N` as the user wrote it, parsed once at the
/// edge and carried typed to where the engine loads (`resolve`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<DeviceSpec> {
        let s = spec.trim().to_ascii_lowercase();
        Ok(match s.as_str() {
            "auto" => DeviceSpec::Auto,
            "cpu" => DeviceSpec::Cpu,
            "cuda" | "gpu" => DeviceSpec::Cuda(0),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => DeviceSpec::Cuda(n.parse().map_err(|_| anyhow::anyhow!("device `{spec}`: `{n}` is not a GPU index"))?),
                None => bail!("device `{spec}` is not auto, cpu, cuda or cuda:N"),
            },
        })
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The torch device: `auto` is CUDA when a GPU is usable; a CUDA device
    /// that is not there is an error saying why.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceSpec::Auto => Ok(auto()),
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => cuda(i),
        }
    }
}

/// A torch device as run.json and the status line name it (`cpu`, `cuda:0`).
pub fn name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        Device::Cpu => "cpu".into(),
    }
}

/// `--device` parsed and resolved in one step (tools that take a device string).
pub fn parse(spec: &str) -> Result<Device> {
    spec.parse::<DeviceSpec>()?.resolve()
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeSpec {
    #[default]
    Auto,
    #[value(alias = "float32", alias = "float")]
    F32,
    #[value(alias = "bfloat16")]
    Bf16,
    #[value(alias = "float16", alias = "half")]
    F16,
}

impl DtypeSpec {
    pub fn resolve(self, device: Device) -> Kind {
        match self {
            DtypeSpec::Auto => default_kind(device),
            DtypeSpec::F32 => Kind::Float,
            DtypeSpec::Bf16 => Kind::BFloat16,
            DtypeSpec::F16 => Kind::Half,
        }
    }
}

impl std::str::FromStr for DtypeSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<DtypeSpec> {
        <DtypeSpec as clap::ValueEnum>::from_str(spec.trim(), true)
            .map_err(|_| anyhow::anyhow!("dtype `{spec}` is not auto, f32, bf16 or f16"))
    }
}

impl std::fmt::Display for DtypeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = clap::ValueEnum::to_possible_value(self).expect("no variant is skipped");
        f.write_str(v.get_name())
    }
}

/// `--dtype` parsed and resolved for `device` in one step.
pub fn parse_dtype(spec: &str, device: Device) -> Result<Kind> {
    Ok(spec.parse::<DtypeSpec>()?.resolve(device))
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
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert_eq!("GPU".parse::<DeviceSpec>().unwrap().to_string(), "cuda:0");
        assert_eq!("float32".parse::<DtypeSpec>().unwrap(), DtypeSpec::F32);
        assert_eq!(DtypeSpec::Bf16.to_string(), "bf16");
        assert_eq!(name(Device::Cuda(1)), "cuda:1");
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
