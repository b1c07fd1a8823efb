//! Safetensors weights, memory-mapped: single-file or sharded through
//! `model.safetensors.index.json`, in either name layout.
//!
//! On the CPU, a tensor already stored in the chosen dtype is not copied: it
//! is a view of a private copy-on-write mapping of the file, as transformers
//! does, so loading costs no memory or time and pages come in from the page
//! cache when first touched. Writes (full training, merging an adapter) stay
//! private to the process; the file never changes.
//!
//! Every other tensor is copied out of the map one at a time, converted to
//! the chosen dtype and device, and its pages are then dropped from the map
//! (MADV_DONTNEED) so the peak resident size stays close to the loaded weights.

use memmap2::{MmapMut, MmapOptions, UncheckedAdvice};
use safetensors::{tensor::TensorInfo, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("{dir}: no model.safetensors or model.safetensors.index.json")]
    NoWeights { dir: PathBuf },
    #[error("{file}: {problem}")]
    File { file: PathBuf, problem: String },
    #[error("weights in {dir} do not fit the config:\n{report}")]
    Mismatch { dir: PathBuf, report: String },
}

struct MappedFile {
    path: PathBuf,
    map: Arc<MmapMut>,
    /// Bytes of loaded tensors that view this map (if any, the map must
    /// outlive the model).
    lent_bytes: AtomicU64,
    /// (offset, length) of each range a loaded tensor views, for `prefault`.
    lent_ranges: std::sync::Mutex<Vec<(usize, usize)>>,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
}

struct Entry {
    file: usize,
    info: TensorInfo,
    /// The name as stored in the file, for messages.
    stored: String,
}

/// Private file mappings that a model's weights view. Held as a model's
/// last field so they are unmapped only after its tensors are gone.
pub struct LentMaps {
    maps: Vec<LentMap>,
}

/// A mapping and the (offset, length) ranges that tensors view in it.
type LentMap = (Arc<MmapMut>, Vec<(usize, usize)>);

impl LentMaps {
    /// Maps the pages of every viewed tensor on a background thread, so the
    /// first forward pass does not stop at a page fault per 4 KiB of weights
    /// (a 3B checkpoint is 1.8 million of them). Only viewed ranges: the
    /// pages of converted tensors were given back and stay given back. The
    /// thread holds the maps, so they outlive it whatever the model does.
    /// The pages count as the process's (shared, file-backed) memory from
    /// then on, so this is for the workbench, which loads and then waits
    /// for a user, not for load-memory figures.
    /// Returns how many bytes it maps.
    pub fn prefault(&self) -> u64 {
        let work = self.maps.clone();
        let bytes = work.iter().flat_map(|(_, r)| r.iter().map(|&(_, len)| len as u64)).sum();
        if bytes == 0 {
            return 0;
        }
        // Best effort: when no thread can be started, nothing is prefaulted (and 0 says so).
        let spawned = std::thread::Builder::new().name("flipscope-prefault".into()).spawn(move || {
            for (map, ranges) in work {
                for (offset, len) in ranges {
                    // MADV_POPULATE_READ (Linux 5.14) maps the pages; older kernels only read ahead.
                    if map.advise_range(memmap2::Advice::PopulateRead, offset, len).is_err() {
                        let _ = map.advise_range(memmap2::Advice::WillNeed, offset, len);
                    }
                }
            }
        });
        if spawned.is_ok() {
            bytes
        } else {
            0
        }
    }
}

/// The tensors of a checkpoint, by canonical name (`visual.*`, `model.*`, `lm_head.*`).
pub struct WeightFiles {
    dir: PathBuf,
    files: Vec<MappedFile>,
    entries: BTreeMap<String, Entry>,
}

/// Maps both layouts onto one: `model.visual.X` -> `visual.X`,
/// `model.language_model.X` -> `model.X`.
pub fn canonical_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("model.visual.") {
        format!("visual.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.language_model.") {
        format!("model.{rest}")
    } else {
        name.to_string()
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

impl WeightFiles {
    pub fn open(dir: &Path) -> Result<WeightFiles, WeightError> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let shard_names: Vec<String> = if index.exists() {
            let text = crate::fsutil::read_text(&index).map_err(|e| WeightError::File { file: index.clone(), problem: e.to_string() })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| WeightError::File { file: index.clone(), problem: format!("not valid JSON: {e}") })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| WeightError::File { file: index.clone(), problem: "field `weight_map`: missing or not an object".into() })?;
            let mut names: Vec<String> = map.values().filter_map(|s| s.as_str().map(str::to_string)).collect();
            names.sort();
            names.dedup();
            names
        } else if single.exists() {
            vec!["model.safetensors".into()]
        } else {
            return Err(WeightError::NoWeights { dir: dir.into() });
        };
        let mut files = Vec::new();
        let mut entries = BTreeMap::new();
        for name in shard_names {
            let path = dir.join(&name);
            let file = std::fs::File::open(&path).map_err(|e| WeightError::File { file: path.clone(), problem: e.to_string() })?;
            // SAFETY: a private mapping: the checkpoint is not expected to change
            // while loaded (flipscope itself replaces files by renaming), and
            // writes through it never reach the file.
            let map = unsafe { MmapOptions::new().map_copy(&file) }
                .map_err(|e| WeightError::File { file: path.clone(), problem: format!("cannot map: {e}") })?;
            let (header_len, meta) = SafeTensors::read_metadata(&map)
                .map_err(|e| WeightError::File { file: path.clone(), problem: format!("not a safetensors file: {e:?}") })?;
            let idx = files.len();
            for (stored, info) in meta.tensors() {
                let canon = canonical_name(&stored);
                if let Some(prev) = entries.insert(canon.clone(), Entry { file: idx, info: info.clone(), stored: stored.clone() }) {
                    return Err(WeightError::File {
                        file: path,
                        problem: format!("tensor `{stored}` duplicates `{}` (same name in another layout or shard)", prev.stored),
                    });
                }
            }
            files.push(MappedFile {
                path,
                map: Arc::new(map),
                lent_bytes: AtomicU64::new(0),
                lent_ranges: Default::default(),
                data_start: 8 + header_len,
            });
        }
        Ok(WeightFiles { dir: dir.into(), files, entries })
    }

    /// The mappings that loaded tensors view: whoever holds those tensors
    /// must hold these too, and drop them last.
    pub fn lent_maps(&self) -> LentMaps {
        let ranges = |f: &MappedFile| f.lent_ranges.lock().unwrap_or_else(|p| p.into_inner()).clone();
        LentMaps {
            maps: self.files.iter().filter(|f| f.lent_bytes.load(Ordering::Relaxed) > 0).map(|f| (Arc::clone(&f.map), ranges(f))).collect(),
        }
    }

    /// Bytes of the tensors loaded so far as views of the files.
    pub fn lent_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.lent_bytes.load(Ordering::Relaxed)).sum()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The stored shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<i64>> {
        self.entries.get(name).map(|e| e.info.shape.iter().map(|&d| d as i64).collect())
    }

    /// Bytes the tensors in `names` take once converted to `kind`.
    pub fn bytes_as(&self, names: &[(String, Vec<i64>)], kind: Kind) -> u64 {
        names
            .iter()
            .filter_map(|(n, _)| self.entries.get(n))
            .map(|e| e.info.shape.iter().product::<usize>() as u64 * kind.elt_size_in_bytes() as u64)
            .sum()
    }

    /// Checks a planned set of (name, shape) against the files and lists every
    /// missing, unexpected and mis-shaped tensor.
    /// The patch embedding's Conv3d kernel is also accepted flattened to
    /// [out, C*T*P*P] (same first dim and element count).
    pub fn check(&self, plan: &[(String, Vec<i64>)]) -> Result<(), WeightError> {
        let planned: HashMap<&str, &Vec<i64>> = plan.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        for (name, shape) in plan {
            match self.entries.get(name) {
                None => missing.push(name.clone()),
                Some(e) => {
                    let stored: Vec<i64> = e.info.shape.iter().map(|&d| d as i64).collect();
                    let numel = |s: &[i64]| s.iter().product::<i64>();
                    let flat_ok = name.ends_with("patch_embed.proj.weight")
                        && stored.len() == 2
                        && stored[0] == shape[0]
                        && numel(&stored) == numel(shape);
                    if &stored != shape && !flat_ok {
                        mismatched.push(format!("{} is {stored:?}, config says {shape:?}", e.stored));
                    } else if kind_of(e.info.dtype).is_none() {
                        mismatched.push(format!("{} has unsupported dtype {:?}", e.stored, e.info.dtype));
                    } else if !matches!(e.info.dtype, Dtype::F32 | Dtype::BF16 | Dtype::F16 | Dtype::F64) {
                        // Converting integers to floats would load garbage without a word.
                        mismatched.push(format!("{} holds {:?} integers where a float weight belongs", e.stored, e.info.dtype));
                    }
                }
            }
        }
        let unexpected: Vec<String> = self
            .entries
            .iter()
            .filter(|(n, _)| !planned.contains_key(n.as_str()) && !n.ends_with("rotary_emb.inv_freq"))
            .map(|(_, e)| e.stored.clone())
            .collect();
        if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() {
            return Ok(());
        }
        let mut report = String::new();
        for (title, list) in [("missing", &missing), ("unexpected", &unexpected), ("shape or dtype mismatch", &mismatched)] {
            if list.is_empty() {
                continue;
            }
            report.push_str(&format!("  {title} ({}):\n", list.len()));
            for item in list.iter().take(25) {
                report.push_str(&format!("    {item}\n"));
            }
            if list.len() > 25 {
                report.push_str(&format!("    ... and {} more\n", list.len() - 25));
            }
        }
        Err(WeightError::Mismatch { dir: self.dir.clone(), report: report.trim_end().to_string() })
    }

    /// One tensor in `kind` on `device`, reshaped to `shape`: a view of the
    /// map on the CPU when the file already holds `kind` (see `lent_maps`),
    /// else a converted copy, after which its mapped pages are released.
    pub fn load(&self, name: &str, shape: &[i64], kind: Kind, device: Device) -> Result<Tensor, WeightError> {
        let e =
            self.entries.get(name).ok_or_else(|| WeightError::Mismatch { dir: self.dir.clone(), report: format!("  missing: {name}") })?;
        let f = &self.files[e.file];
        let (start, end) = (f.data_start + e.info.data_offsets.0, f.data_start + e.info.data_offsets.1);
        let bytes = f.map.get(start..end).ok_or_else(|| WeightError::File {
            file: f.path.clone(),
            problem: format!("tensor `{}` runs past the end of the file", e.stored),
        })?;
        let stored_kind = kind_of(e.info.dtype).ok_or_else(|| WeightError::File {
            file: f.path.clone(),
            problem: format!("tensor `{}`: unsupported dtype {:?}", e.stored, e.info.dtype),
        })?;
        let stored_shape: Vec<i64> = e.info.shape.iter().map(|&d| d as i64).collect();
        let expected = stored_shape.iter().product::<i64>() as usize * stored_kind.elt_size_in_bytes();
        if bytes.len() != expected {
            return Err(WeightError::File {
                file: f.path.clone(),
                problem: format!("tensor `{}`: {} bytes for shape {stored_shape:?} {:?}", e.stored, bytes.len(), e.info.dtype),
            });
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(stored_kind.elt_size_in_bytes()) {
            return Err(WeightError::File {
                file: f.path.clone(),
                problem: format!("tensor `{}` is not aligned to its element size", e.stored),
            });
        }
        let strides: Vec<i64> = {
            let mut acc = 1;
            let mut s: Vec<i64> = stored_shape
                .iter()
                .rev()
                .map(|&d| {
                    let st = acc;
                    acc *= d;
                    st
                })
                .collect();
            s.reverse();
            s
        };
        // SAFETY: `bytes` is in bounds and aligned. A view kept as the weight
        // lives as long as the map, which `lent_maps` hands to the model;
        // every other view is dropped before this function returns.
        let view = unsafe { Tensor::f_from_blob(bytes.as_ptr(), &stored_shape, &strides, stored_kind, Device::Cpu) }
            .map_err(|err| WeightError::File { file: f.path.clone(), problem: format!("tensor `{}`: {err}", e.stored) })?;
        if device == Device::Cpu && kind == stored_kind {
            f.lent_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            f.lent_ranges.lock().unwrap_or_else(|p| p.into_inner()).push((start, end - start));
            return Ok(view.reshape(shape));
        }
        let owned = match device {
            Device::Cpu => view.to_kind(kind),
            // Convert on the GPU: bf16 -> f32 is cheaper there.
            _ => view.to_device(device).to_kind(kind),
        };
        drop(view);
        let t = owned.reshape(shape);
        // SAFETY: the map is read-only and file-backed, so dropped pages are
        // simply re-read from the file if touched again.
        unsafe {
            let _ = f.map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("model.visual.blocks.0.attn.qkv.weight"), "visual.blocks.0.attn.qkv.weight");
        assert_eq!(canonical_name("model.language_model.layers.1.mlp.up_proj.weight"), "model.layers.1.mlp.up_proj.weight");
        assert_eq!(canonical_name("model.layers.1.mlp.up_proj.weight"), "model.layers.1.mlp.up_proj.weight");
        assert_eq!(canonical_name("lm_head.weight"), "lm_head.weight");
    }
}
