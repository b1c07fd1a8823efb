//! Checkpoint configuration: `config.json` (flat pre-transformers-5 layout or
//! the `text_config` + `vision_config` layout), `generation_config.json` and
//! `preprocessor_config.json`.

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A config problem, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is in the message, not a `source`: with both, `{:#}` says it twice.
    #[error("{file}: cannot read: {cause}")]
    Io { file: PathBuf, cause: std::io::Error },
    #[error("{file}: not valid JSON: {cause}")]
    Json { file: PathBuf, cause: serde_json::Error },
    #[error("{file}: field `{field}`: {problem}")]
    Field { file: PathBuf, field: String, problem: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// How the rotary half-dimension splits over (t, h, w).
    pub mrope_section: Vec<i64>,
    pub hidden_act: String,
    /// The longest sequence the model was built for (`max_position_embeddings`).
    pub max_position_embeddings: Option<i64>,
}

impl TextConfig {
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub depth: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_heads: i64,
    pub in_channels: i64,
    pub patch_size: i64,
    pub spatial_merge_size: i64,
    pub temporal_patch_size: i64,
    pub window_size: i64,
    pub out_hidden_size: i64,
    pub fullatt_block_indexes: Vec<i64>,
    pub hidden_act: String,
    pub rope_theta: f64,
}

impl VisionConfig {
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_heads
    }
    /// Values in one flattened patch: C * T * P * P (1176 for Qwen2.5-VL).
    pub fn patch_dim(&self) -> i64 {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub tie_word_embeddings: bool,
    pub image_token_id: i64,
    pub video_token_id: i64,
    pub vision_start_token_id: i64,
    pub vision_end_token_id: i64,
    pub bos_token_id: Option<i64>,
    /// End-of-sequence ids: generation_config.json first, then config.json's top level.
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessorConfig {
    pub min_pixels: i64,
    pub max_pixels: i64,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub rescale_factor: f32,
    pub patch_size: i64,
    pub merge_size: i64,
    pub temporal_patch_size: i64,
}

impl Default for PreprocessorConfig {
    /// Qwen2.5-VL's processor defaults.
    fn default() -> Self {
        PreprocessorConfig {
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
            rescale_factor: 1.0 / 255.0,
            patch_size: 14,
            merge_size: 2,
            temporal_patch_size: 2,
        }
    }
}

pub(crate) fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = crate::fsutil::read_text(path).map_err(|cause| ConfigError::Io { file: path.into(), cause })?;
    serde_json::from_str(&text).map_err(|cause| ConfigError::Json { file: path.into(), cause })
}

/// `x` or `[x, y]`, as configs write token-id lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(i64),
    Many(Vec<i64>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<i64> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `rope_parameters` (transformers 5) or `rope_scaling` (before).
#[derive(Debug, Clone, Default, Deserialize)]
struct RawRope {
    rope_theta: Option<f64>,
    mrope_section: Option<Vec<i64>>,
}

/// The language model's fields and the token ids: at the top level of a
/// flat config, under `text_config` in transformers 5 (which also writes
/// its own defaults for the ids there; the top level's win).
#[derive(Debug, Clone, Default, Deserialize)]
struct RawText {
    vocab_size: Option<i64>,
    hidden_size: Option<i64>,
    intermediate_size: Option<i64>,
    num_hidden_layers: Option<i64>,
    num_attention_heads: Option<i64>,
    num_key_value_heads: Option<i64>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<RawRope>,
    rope_parameters: Option<RawRope>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<i64>,
    use_sliding_window: Option<bool>,
    tie_word_embeddings: Option<bool>,
    bos_token_id: Option<i64>,
    eos_token_id: Option<OneOrMany>,
    pad_token_id: Option<i64>,
    image_token_id: Option<i64>,
    video_token_id: Option<i64>,
    vision_start_token_id: Option<i64>,
    vision_end_token_id: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawVision {
    depth: Option<i64>,
    hidden_size: Option<i64>,
    intermediate_size: Option<i64>,
    num_heads: Option<i64>,
    in_channels: Option<i64>,
    patch_size: Option<i64>,
    spatial_merge_size: Option<i64>,
    temporal_patch_size: Option<i64>,
    window_size: Option<i64>,
    out_hidden_size: Option<i64>,
    fullatt_block_indexes: Option<Vec<i64>>,
    hidden_act: Option<String>,
    rope_parameters: Option<RawRope>,
}

/// The parts of config.json that are not the language model's.
#[derive(Debug, Clone, Deserialize)]
struct RawModel {
    model_type: Option<String>,
    vision_config: Option<RawVision>,
    /// Only whether it is there: its fields are read as `RawText`.
    text_config: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawGeneration {
    eos_token_id: Option<OneOrMany>,
    pad_token_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawSize {
    shortest_edge: Option<i64>,
    longest_edge: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawPreprocessor {
    min_pixels: Option<i64>,
    max_pixels: Option<i64>,
    size: Option<RawSize>,
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
    rescale_factor: Option<f32>,
    patch_size: Option<i64>,
    merge_size: Option<i64>,
    temporal_patch_size: Option<i64>,
}

/// `value` (the part of `file` under `prefix`) as `T`; a wrong type names
/// the file and the field's whole path.
fn typed<T: serde::de::DeserializeOwned>(file: &Path, prefix: &str, value: &Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { prefix.trim_end_matches('.').to_string() } else { format!("{prefix}{path}") };
        ConfigError::Field { file: file.into(), field, problem: e.into_inner().to_string() }
    })
}

/// Names the file and the field (under `prefix`) of a value that parsed but does not fit.
struct Fields<'a> {
    file: &'a Path,
    prefix: &'a str,
}

impl Fields<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Field { file: self.file.into(), field: format!("{}{field}", self.prefix), problem: problem.into() }
    }

    fn required<T>(&self, field: &str, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| self.err(field, "missing"))
    }

    /// A size: a whole number from 1 to `max`, checked before anything is
    /// allocated from it (a zero divides by zero later; 10^9 layers would
    /// grow gigabytes of plan before any tensor is looked at).
    fn size(&self, field: &str, value: i64, max: i64) -> Result<i64, ConfigError> {
        if (1..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(field, format!("{value} is not a size from 1 to {max}")))
        }
    }

    fn required_size(&self, field: &str, value: Option<i64>, max: i64) -> Result<i64, ConfigError> {
        self.size(field, self.required(field, value)?, max)
    }

    /// A finite number above zero (epsilons, rope bases, scales).
    fn positive(&self, field: &str, value: f64) -> Result<f64, ConfigError> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(self.err(field, format!("{value} must be a finite number above 0")))
        }
    }
}

/// Upper bounds far above any released model, below anything absurd.
const MAX_VOCAB: i64 = 1 << 24;
const MAX_WIDTH: i64 = 1 << 17;
const MAX_LAYERS: i64 = 1024;
const MAX_HEADS: i64 = 1024;

impl ModelConfig {
    /// The image, video and vision start/end placeholder ids (never a sampled token).
    pub fn vision_token_ids(&self) -> [i64; 4] {
        [self.image_token_id, self.video_token_id, self.vision_start_token_id, self.vision_end_token_id]
    }

    /// Reads `config.json` and, when present, `generation_config.json` from a checkpoint directory.
    pub fn load(dir: &Path) -> Result<ModelConfig, ConfigError> {
        let file = dir.join("config.json");
        let root = read_json(&file)?;
        let gen_file = dir.join("generation_config.json");
        let generation = if gen_file.exists() { Some(read_json(&gen_file)?) } else { None };
        Self::from_json(&file, &root, generation.as_ref().map(|g| (gen_file.as_path(), g)))
    }

    pub fn from_json(file: &Path, root: &Value, generation: Option<(&Path, &Value)>) -> Result<ModelConfig, ConfigError> {
        let top = Fields { file, prefix: "" };
        if !root.is_object() {
            return Err(top.err("(root)", "expected a JSON object"));
        }
        let model: RawModel = typed(file, "", root)?;
        let model_type = model.model_type.unwrap_or_default();
        if !model_type.is_empty() && model_type != "qwen2_5_vl" {
            return Err(top.err("model_type", format!("`{model_type}` is not qwen2_5_vl")));
        }
        let top_text: RawText = typed(file, "", root)?;
        // transformers 5 nests the language model under text_config; older
        // checkpoints keep its fields at the top level.
        let (t, tf) = match &model.text_config {
            Some(tc) => (typed::<RawText>(file, "text_config.", &Value::Object(tc.clone()))?, Fields { file, prefix: "text_config." }),
            None => (top_text.clone(), Fields { file, prefix: "" }),
        };
        let text = read_text(&t, &tf, &top_text)?;
        let vf = Fields { file, prefix: "vision_config." };
        let v = model.vision_config.ok_or_else(|| top.err("vision_config", "missing"))?;
        let vision = read_vision(&v, &vf)?;
        if vision.out_hidden_size != text.hidden_size {
            return Err(
                vf.err("out_hidden_size", format!("{} differs from the text hidden_size {}", vision.out_hidden_size, text.hidden_size))
            );
        }

        // Top-level ids win over text_config, where transformers 5 writes its
        // own Qwen defaults; generation_config.json wins over both for EOS.
        let mut eos = top_text.eos_token_id.clone().or(t.eos_token_id.clone()).map(OneOrMany::into_vec).unwrap_or_default();
        let mut pad = top_text.pad_token_id.or(t.pad_token_id);
        if let Some((gfile, g)) = generation {
            let gen: RawGeneration = typed(gfile, "", g)?;
            if let Some(ids) = gen.eos_token_id {
                eos = ids.into_vec();
            }
            if let Some(p) = gen.pad_token_id {
                pad = Some(p);
            }
        }
        for (i, &e) in eos.iter().enumerate() {
            if e < 0 || e >= text.vocab_size {
                return Err(top.err("eos_token_id", format!("id {e} (entry {i}) is outside the vocabulary of {}", text.vocab_size)));
            }
        }
        let id = |top: Option<i64>, nested: Option<i64>, default: i64| top.or(nested).unwrap_or(default);
        let cfg = ModelConfig {
            image_token_id: id(top_text.image_token_id, t.image_token_id, 151655),
            video_token_id: id(top_text.video_token_id, t.video_token_id, 151656),
            vision_start_token_id: id(top_text.vision_start_token_id, t.vision_start_token_id, 151652),
            vision_end_token_id: id(top_text.vision_end_token_id, t.vision_end_token_id, 151653),
            text,
            vision,
            tie_word_embeddings: top_text.tie_word_embeddings.unwrap_or(false) || t.tie_word_embeddings.unwrap_or(false),
            bos_token_id: top_text.bos_token_id.or(t.bos_token_id),
            eos_token_ids: eos,
            pad_token_id: pad,
        };
        for (name, value) in [("image_token_id", cfg.image_token_id), ("vision_start_token_id", cfg.vision_start_token_id)] {
            if value < 0 || value >= cfg.text.vocab_size {
                return Err(top.err(name, format!("id {value} is outside the vocabulary of {}", cfg.text.vocab_size)));
            }
        }
        Ok(cfg)
    }
}

/// The language model's config from its fields `t` (named by `tf`); rope
/// settings and theta may also sit at the top level (`top`).
fn read_text(t: &RawText, tf: &Fields, top: &RawText) -> Result<TextConfig, ConfigError> {
    let hidden = tf.required_size("hidden_size", t.hidden_size, MAX_WIDTH)?;
    let heads = tf.required_size("num_attention_heads", t.num_attention_heads, MAX_HEADS)?;
    if hidden % heads != 0 {
        return Err(tf.err("num_attention_heads", format!("{heads} does not divide hidden_size {hidden}")));
    }
    let kv = tf.size("num_key_value_heads", t.num_key_value_heads.unwrap_or(heads), MAX_HEADS)?;
    if heads % kv != 0 {
        return Err(tf.err("num_key_value_heads", format!("{kv} does not divide num_attention_heads {heads}")));
    }
    // rope: transformers 5 `rope_parameters`, or the older `rope_scaling` +
    // `rope_theta`; either may sit in text_config or at the top.
    let (rope, rope_field) = match (&t.rope_parameters, &t.rope_scaling, &top.rope_parameters, &top.rope_scaling) {
        (Some(r), ..) => (Some(r), format!("{}rope_parameters.", tf.prefix)),
        (None, Some(r), ..) => (Some(r), format!("{}rope_scaling.", tf.prefix)),
        (None, None, Some(r), _) => (Some(r), "rope_parameters.".to_string()),
        (None, None, None, Some(r)) => (Some(r), "rope_scaling.".to_string()),
        _ => (None, String::new()),
    };
    let theta_default = t.rope_theta.or(top.rope_theta).unwrap_or(1_000_000.0);
    let theta = rope.and_then(|r| r.rope_theta).unwrap_or(theta_default);
    let theta = tf.positive("rope_theta", theta)?;
    if t.use_sliding_window.unwrap_or(false) {
        return Err(tf.err("use_sliding_window", "sliding-window attention is not supported (no released Qwen2.5-VL uses it)"));
    }
    let head_dim = hidden / heads;
    let section = rope.and_then(|r| r.mrope_section.clone()).unwrap_or_else(|| vec![16, 24, 24]);
    if section.len() != 3 || section.iter().sum::<i64>() * 2 != head_dim {
        let problem = format!("{section:?} must have 3 parts summing to head_dim/2 = {}", head_dim / 2);
        return Err(match rope {
            Some(_) => Fields { file: tf.file, prefix: &rope_field }.err("mrope_section", problem),
            None => tf.err("rope_scaling", problem),
        });
    }
    Ok(TextConfig {
        vocab_size: tf.required_size("vocab_size", t.vocab_size, MAX_VOCAB)?,
        hidden_size: hidden,
        intermediate_size: tf.required_size("intermediate_size", t.intermediate_size, MAX_WIDTH)?,
        num_hidden_layers: tf.required_size("num_hidden_layers", t.num_hidden_layers, MAX_LAYERS)?,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        rms_norm_eps: tf.positive("rms_norm_eps", t.rms_norm_eps.unwrap_or(1e-6))?,
        rope_theta: theta,
        mrope_section: section,
        hidden_act: t.hidden_act.clone().unwrap_or_else(|| "silu".into()),
        max_position_embeddings: match t.max_position_embeddings.or(top.max_position_embeddings) {
            Some(n) => Some(tf.size("max_position_embeddings", n, MAX_VOCAB)?),
            None => None,
        },
    })
}

fn read_vision(v: &RawVision, vf: &Fields) -> Result<VisionConfig, ConfigError> {
    let hidden = vf.required_size("hidden_size", v.hidden_size, MAX_WIDTH)?;
    let heads = vf.required_size("num_heads", v.num_heads, MAX_HEADS)?;
    if hidden % heads != 0 || (hidden / heads) % 4 != 0 {
        return Err(vf.err("num_heads", format!("{heads} heads do not split hidden_size {hidden} into head dims divisible by 4")));
    }
    let cfg = VisionConfig {
        depth: vf.required_size("depth", v.depth, MAX_LAYERS)?,
        hidden_size: hidden,
        intermediate_size: vf.required_size("intermediate_size", v.intermediate_size, MAX_WIDTH)?,
        num_heads: heads,
        in_channels: vf.size("in_channels", v.in_channels.unwrap_or(3), 16)?,
        patch_size: vf.size("patch_size", v.patch_size.unwrap_or(14), 1024)?,
        spatial_merge_size: vf.size("spatial_merge_size", v.spatial_merge_size.unwrap_or(2), 64)?,
        temporal_patch_size: vf.size("temporal_patch_size", v.temporal_patch_size.unwrap_or(2), 16)?,
        window_size: vf.size("window_size", v.window_size.unwrap_or(112), 1 << 16)?,
        out_hidden_size: vf.required_size("out_hidden_size", v.out_hidden_size, MAX_WIDTH)?,
        fullatt_block_indexes: v.fullatt_block_indexes.clone().unwrap_or_else(|| vec![7, 15, 23, 31]),
        hidden_act: v.hidden_act.clone().unwrap_or_else(|| "silu".into()),
        rope_theta: vf.positive("rope_parameters.rope_theta", v.rope_parameters.as_ref().and_then(|r| r.rope_theta).unwrap_or(10000.0))?,
    };
    let unit = cfg.patch_size * cfg.spatial_merge_size;
    if cfg.window_size < unit || cfg.window_size % unit != 0 {
        return Err(vf.err("window_size", format!("{} is not a multiple of patch_size*spatial_merge_size = {unit}", cfg.window_size)));
    }
    if let Some(&bad) = cfg.fullatt_block_indexes.iter().find(|&&i| i < 0 || i >= cfg.depth) {
        return Err(vf.err("fullatt_block_indexes", format!("block {bad} is outside depth {}", cfg.depth)));
    }
    Ok(cfg)
}

impl PreprocessorConfig {
    /// Reads `preprocessor_config.json`; Qwen2.5-VL defaults when the file is absent.
    pub fn load(dir: &Path) -> Result<PreprocessorConfig, ConfigError> {
        let file = dir.join("preprocessor_config.json");
        if !file.exists() {
            return Ok(PreprocessorConfig::default());
        }
        let root = read_json(&file)?;
        Self::from_json(&file, &root)
    }

    pub fn from_json(file: &Path, root: &Value) -> Result<PreprocessorConfig, ConfigError> {
        let f = Fields { file, prefix: "" };
        let raw: RawPreprocessor = typed(file, "", root)?;
        let d = PreprocessorConfig::default();
        // transformers 5 writes size.{shortest,longest}_edge; older files have min/max_pixels.
        let size = raw.size.unwrap_or_default();
        let min_pixels = raw.min_pixels.or(size.shortest_edge).unwrap_or(d.min_pixels);
        let max_pixels = raw.max_pixels.or(size.longest_edge).unwrap_or(d.max_pixels);
        if min_pixels <= 0 || max_pixels < min_pixels {
            return Err(f.err("max_pixels", format!("min_pixels {min_pixels} / max_pixels {max_pixels} are not a valid range")));
        }
        let cfg = PreprocessorConfig {
            min_pixels,
            max_pixels: f.size("max_pixels", max_pixels, 1 << 28)?,
            image_mean: raw.image_mean.unwrap_or(d.image_mean),
            image_std: raw.image_std.unwrap_or(d.image_std),
            rescale_factor: f.positive("rescale_factor", raw.rescale_factor.unwrap_or(d.rescale_factor) as f64)? as f32,
            patch_size: f.size("patch_size", raw.patch_size.unwrap_or(d.patch_size), 1024)?,
            merge_size: f.size("merge_size", raw.merge_size.unwrap_or(d.merge_size), 64)?,
            temporal_patch_size: f.size("temporal_patch_size", raw.temporal_patch_size.unwrap_or(d.temporal_patch_size), 16)?,
        };
        if cfg.image_std.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            return Err(f.err("image_std", "every entry must be a finite number above 0"));
        }
        if cfg.image_mean.iter().any(|m| !m.is_finite()) {
            return Err(f.err("image_mean", "every entry must be finite"));
        }
        Ok(cfg)
    }

    /// The side length every resized image is a multiple of (28).
    pub fn factor(&self) -> i64 {
        self.patch_size * self.merge_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vision() -> Value {
        json!({"depth": 4, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64,
               "window_size": 112, "fullatt_block_indexes": [1, 3]})
    }

    fn flat() -> Value {
        json!({"model_type": "qwen2_5_vl", "vocab_size": 448, "hidden_size": 64, "intermediate_size": 112,
               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
               "tie_word_embeddings": true, "image_token_id": 12, "video_token_id": 13,
               "vision_start_token_id": 9, "vision_end_token_id": 10, "bos_token_id": 0, "eos_token_id": 2,
               "vision_config": vision()})
    }

    fn v5() -> Value {
        json!({"model_type": "qwen2_5_vl", "image_token_id": 12, "video_token_id": 13, "vision_start_token_id": 9,
               "vision_end_token_id": 10, "bos_token_id": 0, "eos_token_id": 2, "tie_word_embeddings": false,
               "text_config": {"vocab_size": 448, "hidden_size": 64, "intermediate_size": 112,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "bos_token_id": 151643, "eos_token_id": 151645,
                   "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]}},
               "vision_config": vision()})
    }

    fn parse(v: &Value) -> Result<ModelConfig, ConfigError> {
        ModelConfig::from_json(Path::new("config.json"), v, None)
    }

    #[test]
    fn both_layouts_read_the_same() {
        let a = parse(&flat()).unwrap();
        let mut b = parse(&v5()).unwrap();
        assert!(a.tie_word_embeddings && !b.tie_word_embeddings);
        b.tie_word_embeddings = true;
        assert_eq!(a, b);
        assert_eq!(a.text.mrope_section, vec![2, 3, 3]);
        assert_eq!(a.text.head_dim(), 16);
        // top-level ids win over transformers 5's text_config defaults
        assert_eq!(b.eos_token_ids, vec![2]);
        assert_eq!(b.bos_token_id, Some(0));
    }

    #[test]
    fn generation_config_wins_for_eos() {
        let g = json!({"eos_token_id": [2, 0], "pad_token_id": 0});
        let c = ModelConfig::from_json(Path::new("config.json"), &v5(), Some((Path::new("generation_config.json"), &g))).unwrap();
        assert_eq!(c.eos_token_ids, vec![2, 0]);
        assert_eq!(c.pad_token_id, Some(0));
    }

    type Edit = Box<dyn Fn(&mut Value)>;

    #[test]
    fn bad_configs_name_file_and_field() {
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["vision_config"]["depth"] = json!("four")),
                "config.json: field `vision_config.depth`: invalid type: string \"four\", expected i64",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("vision_config");
                }),
                "field `vision_config`: missing",
            ),
            (
                Box::new(|v| v["text_config"]["rope_parameters"]["mrope_section"] = json!([2, 3])),
                "field `text_config.rope_parameters.mrope_section`",
            ),
            (
                Box::new(|v| v["text_config"]["num_key_value_heads"] = json!(3)),
                "field `text_config.num_key_value_heads`: 3 does not divide",
            ),
            (Box::new(|v| v["text_config"]["use_sliding_window"] = json!(true)), "field `text_config.use_sliding_window`: sliding-window"),
            (Box::new(|v| v["model_type"] = json!("llava")), "field `model_type`: `llava` is not qwen2_5_vl"),
            (Box::new(|v| v["vision_config"]["window_size"] = json!(100)), "field `vision_config.window_size`"),
            (Box::new(|v| v["vision_config"]["fullatt_block_indexes"] = json!([9])), "block 9 is outside depth 4"),
            (Box::new(|v| v["eos_token_id"] = json!(151645)), "field `eos_token_id`: id 151645"),
            (
                Box::new(|v| {
                    v["text_config"].as_object_mut().unwrap().remove("hidden_size");
                }),
                "field `text_config.hidden_size`: missing",
            ),
            (Box::new(|v| v["text_config"]["vocab_size"] = json!(1.5)), "field `text_config.vocab_size`: invalid type: floating point"),
            (Box::new(|v| v["vision_config"]["fullatt_block_indexes"] = json!([1, "x"])), "field `vision_config.fullatt_block_indexes[1]`"),
            (Box::new(|v| v["eos_token_id"] = json!("two")), "field `eos_token_id`"),
        ];
        // Case 9: every size has its own message, naming its field.
        let sizes: Vec<(Edit, &str)> = vec![
            (Box::new(|v| v["vision_config"]["patch_size"] = json!(0)), "field `vision_config.patch_size`: 0 is not a size from 1 to 1024"),
            (
                Box::new(|v| v["vision_config"]["spatial_merge_size"] = json!(0)),
                "field `vision_config.spatial_merge_size`: 0 is not a size",
            ),
            (
                Box::new(|v| v["text_config"]["num_hidden_layers"] = json!(1_000_000_000)),
                "field `text_config.num_hidden_layers`: 1000000000 is not a size from 1 to 1024",
            ),
            (Box::new(|v| v["text_config"]["hidden_size"] = json!(0)), "field `text_config.hidden_size`: 0 is not a size"),
            (Box::new(|v| v["text_config"]["vocab_size"] = json!(-5)), "field `text_config.vocab_size`: -5 is not a size"),
            (Box::new(|v| v["text_config"]["num_attention_heads"] = json!(0)), "field `text_config.num_attention_heads`: 0 is not a size"),
            (Box::new(|v| v["text_config"]["intermediate_size"] = json!(0)), "field `text_config.intermediate_size`: 0 is not a size"),
            (Box::new(|v| v["vision_config"]["depth"] = json!(0)), "field `vision_config.depth`: 0 is not a size"),
            (Box::new(|v| v["vision_config"]["in_channels"] = json!(0)), "field `vision_config.in_channels`: 0 is not a size"),
            (
                Box::new(|v| v["vision_config"]["temporal_patch_size"] = json!(0)),
                "field `vision_config.temporal_patch_size`: 0 is not a size",
            ),
            (
                Box::new(|v| v["text_config"]["rms_norm_eps"] = json!(-1.0)),
                "field `text_config.rms_norm_eps`: -1 must be a finite number above 0",
            ),
        ];
        let cases: Vec<(Edit, &str)> = cases.into_iter().chain(sizes).collect();
        for (edit, want) in cases {
            let mut v = v5();
            edit(&mut v);
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn an_io_error_says_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", anyhow::Error::from(ModelConfig::load(dir.path()).unwrap_err()));
        assert!(err.contains("config.json: cannot read"), "{err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    }

    #[test]
    fn preprocessor_both_spellings() {
        let p = PreprocessorConfig::from_json(Path::new("p.json"), &json!({"min_pixels": 100, "max_pixels": 1000})).unwrap();
        assert_eq!((p.min_pixels, p.max_pixels), (100, 1000));
        let q =
            PreprocessorConfig::from_json(Path::new("p.json"), &json!({"size": {"shortest_edge": 3136, "longest_edge": 50176}})).unwrap();
        assert_eq!((q.min_pixels, q.max_pixels), (3136, 50176));
        assert_eq!(q.factor(), 28);
        let e = PreprocessorConfig::from_json(Path::new("p.json"), &json!({"image_std": [0, 1, 1]})).unwrap_err();
        assert!(e.to_string().contains("p.json: field `image_std`"));
        for (field, bad) in [("patch_size", json!(0)), ("merge_size", json!(0)), ("rescale_factor", json!(-1.0))] {
            let e = PreprocessorConfig::from_json(Path::new("p.json"), &json!({ field: bad })).unwrap_err().to_string();
            assert!(e.contains(&format!("p.json: field `{field}`")), "{e}");
        }
    }
}
