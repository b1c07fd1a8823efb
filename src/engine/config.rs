//! Checkpoint configuration: `config.json` (flat pre-transformers-5 layout or
//! the `text_config` + `vision_config` layout), `generation_config.json` and
//! `preprocessor_config.json`.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A config problem, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{file}: not valid JSON: {source}")]
    Json { file: PathBuf, source: serde_json::Error },
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
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| ConfigError::Json { file: path.into(), source })
}

/// Typed field access that names the file and the field on failure.
struct Fields<'a> {
    file: &'a Path,
    prefix: &'a str,
    obj: &'a Value,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Field { file: self.file.into(), field: format!("{}{field}", self.prefix), problem: problem.into() }
    }
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }
    fn int(&self, field: &str) -> Result<i64, ConfigError> {
        self.opt_int(field)?.ok_or_else(|| self.err(field, "missing"))
    }
    fn int_or(&self, field: &str, default: i64) -> Result<i64, ConfigError> {
        Ok(self.opt_int(field)?.unwrap_or(default))
    }
    fn opt_int(&self, field: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| self.err(field, format!("expected an integer, got {v}"))),
        }
    }
    fn float_or(&self, field: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.err(field, format!("expected a number, got {v}"))),
        }
    }
    fn str_or(&self, field: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(field) {
            None => Ok(default.to_string()),
            Some(v) => v.as_str().map(str::to_string).ok_or_else(|| self.err(field, format!("expected a string, got {v}"))),
        }
    }
    fn bool_or(&self, field: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(field, format!("expected true/false, got {v}"))),
        }
    }
    fn ints(&self, field: &str) -> Result<Option<Vec<i64>>, ConfigError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_i64().ok_or_else(|| self.err(field, format!("expected integers, got {v}"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::Number(n)) => Ok(Some(vec![n.as_i64().ok_or_else(|| self.err(field, "expected an integer"))?])),
            Some(v) => Err(self.err(field, format!("expected a list of integers, got {v}"))),
        }
    }
    fn object(&self, field: &str) -> Option<Fields<'a>> {
        self.get(field).filter(|v| v.is_object()).map(|obj| Fields { file: self.file, prefix: field_prefix(field), obj })
    }
}

fn field_prefix(field: &str) -> &'static str {
    match field {
        "vision_config" => "vision_config.",
        "text_config" => "text_config.",
        "rope_scaling" => "rope_scaling.",
        "rope_parameters" => "rope_parameters.",
        _ => "",
    }
}

impl ModelConfig {
    /// Reads `config.json` and, when present, `generation_config.json` from a checkpoint directory.
    pub fn load(dir: &Path) -> Result<ModelConfig, ConfigError> {
        let file = dir.join("config.json");
        let root = read_json(&file)?;
        let gen_file = dir.join("generation_config.json");
        let generation = if gen_file.exists() { Some(read_json(&gen_file)?) } else { None };
        Self::from_json(&file, &root, generation.as_ref().map(|g| (gen_file.as_path(), g)))
    }

    pub fn from_json(file: &Path, root: &Value, generation: Option<(&Path, &Value)>) -> Result<ModelConfig, ConfigError> {
        let top = Fields { file, prefix: "", obj: root };
        if !root.is_object() {
            return Err(top.err("(root)", "expected a JSON object"));
        }
        let model_type = top.str_or("model_type", "")?;
        if !model_type.is_empty() && model_type != "qwen2_5_vl" {
            return Err(top.err("model_type", format!("`{model_type}` is not qwen2_5_vl")));
        }
        // transformers 5 nests the language model under text_config; older
        // checkpoints keep its fields at the top level.
        let text_fields = top.object("text_config");
        let t = text_fields.as_ref().unwrap_or(&top);
        let text = read_text(t, &top)?;
        let v = top.object("vision_config").ok_or_else(|| top.err("vision_config", "missing"))?;
        let vision = read_vision(&v)?;
        if vision.out_hidden_size != text.hidden_size {
            return Err(
                v.err("out_hidden_size", format!("{} differs from the text hidden_size {}", vision.out_hidden_size, text.hidden_size))
            );
        }

        // Top-level ids win over text_config, where transformers 5 writes its
        // own Qwen defaults; generation_config.json wins over both for EOS.
        let id = |name: &str, default: i64| -> Result<i64, ConfigError> {
            match top.opt_int(name)? {
                Some(x) => Ok(x),
                None => t.int_or(name, default),
            }
        };
        let bos = match top.opt_int("bos_token_id")? {
            Some(x) => Some(x),
            None => t.opt_int("bos_token_id")?,
        };
        let mut eos = match top.ints("eos_token_id")? {
            Some(x) => x,
            None => t.ints("eos_token_id")?.unwrap_or_default(),
        };
        let mut pad = match top.opt_int("pad_token_id")? {
            Some(x) => Some(x),
            None => t.opt_int("pad_token_id")?,
        };
        if let Some((gfile, g)) = generation {
            let gf = Fields { file: gfile, prefix: "", obj: g };
            if let Some(ids) = gf.ints("eos_token_id")? {
                eos = ids;
            }
            if let Some(p) = gf.opt_int("pad_token_id")? {
                pad = Some(p);
            }
        }
        for (i, &e) in eos.iter().enumerate() {
            if e < 0 || e >= text.vocab_size {
                return Err(top.err("eos_token_id", format!("id {e} (entry {i}) is outside the vocabulary of {}", text.vocab_size)));
            }
        }
        let tie = top.bool_or("tie_word_embeddings", false)? || t.bool_or("tie_word_embeddings", false)?;
        let cfg = ModelConfig {
            image_token_id: id("image_token_id", 151655)?,
            video_token_id: id("video_token_id", 151656)?,
            vision_start_token_id: id("vision_start_token_id", 151652)?,
            vision_end_token_id: id("vision_end_token_id", 151653)?,
            text,
            vision,
            tie_word_embeddings: tie,
            bos_token_id: bos,
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

fn read_text(t: &Fields, top: &Fields) -> Result<TextConfig, ConfigError> {
    let heads = t.int("num_attention_heads")?;
    let hidden = t.int("hidden_size")?;
    if heads <= 0 || hidden % heads != 0 {
        return Err(t.err("num_attention_heads", format!("{heads} does not divide hidden_size {hidden}")));
    }
    let kv = t.int_or("num_key_value_heads", heads)?;
    if kv <= 0 || heads % kv != 0 {
        return Err(t.err("num_key_value_heads", format!("{kv} does not divide num_attention_heads {heads}")));
    }
    // rope: transformers 5 `rope_parameters`, or the older `rope_scaling` +
    // `rope_theta`; either may sit in text_config or at the top.
    let rope = t
        .object("rope_parameters")
        .or_else(|| t.object("rope_scaling"))
        .or_else(|| top.object("rope_parameters"))
        .or_else(|| top.object("rope_scaling"));
    let theta_default = match t.get("rope_theta").or_else(|| top.get("rope_theta")) {
        Some(v) => v.as_f64().ok_or_else(|| t.err("rope_theta", format!("expected a number, got {v}")))?,
        None => 1_000_000.0,
    };
    let (theta, section) = match &rope {
        Some(r) => (r.float_or("rope_theta", theta_default)?, r.ints("mrope_section")?),
        None => (theta_default, None),
    };
    if t.bool_or("use_sliding_window", false)? {
        return Err(t.err("use_sliding_window", "sliding-window attention is not supported (no released Qwen2.5-VL uses it)"));
    }
    let head_dim = hidden / heads;
    let section = section.unwrap_or_else(|| vec![16, 24, 24]);
    if section.len() != 3 || section.iter().sum::<i64>() * 2 != head_dim {
        let field = if rope.is_some() { "mrope_section" } else { "rope_scaling" };
        return Err(rope
            .as_ref()
            .unwrap_or(t)
            .err(field, format!("{section:?} must have 3 parts summing to head_dim/2 = {}", head_dim / 2)));
    }
    Ok(TextConfig {
        vocab_size: t.int("vocab_size")?,
        hidden_size: hidden,
        intermediate_size: t.int("intermediate_size")?,
        num_hidden_layers: t.int("num_hidden_layers")?,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        rms_norm_eps: t.float_or("rms_norm_eps", 1e-6)?,
        rope_theta: theta,
        mrope_section: section,
        hidden_act: t.str_or("hidden_act", "silu")?,
    })
}

fn read_vision(v: &Fields) -> Result<VisionConfig, ConfigError> {
    let hidden = v.int("hidden_size")?;
    let heads = v.int("num_heads")?;
    if heads <= 0 || hidden % heads != 0 || (hidden / heads) % 4 != 0 {
        return Err(v.err("num_heads", format!("{heads} heads do not split hidden_size {hidden} into head dims divisible by 4")));
    }
    let theta = match v.object("rope_parameters") {
        Some(r) => r.float_or("rope_theta", 10000.0)?,
        None => 10000.0,
    };
    let cfg = VisionConfig {
        depth: v.int("depth")?,
        hidden_size: hidden,
        intermediate_size: v.int("intermediate_size")?,
        num_heads: heads,
        in_channels: v.int_or("in_channels", 3)?,
        patch_size: v.int_or("patch_size", 14)?,
        spatial_merge_size: v.int_or("spatial_merge_size", 2)?,
        temporal_patch_size: v.int_or("temporal_patch_size", 2)?,
        window_size: v.int_or("window_size", 112)?,
        out_hidden_size: v.int("out_hidden_size")?,
        fullatt_block_indexes: v.ints("fullatt_block_indexes")?.unwrap_or_else(|| vec![7, 15, 23, 31]),
        hidden_act: v.str_or("hidden_act", "silu")?,
        rope_theta: theta,
    };
    let unit = cfg.patch_size * cfg.spatial_merge_size;
    if cfg.window_size < unit || cfg.window_size % unit != 0 {
        return Err(v.err("window_size", format!("{} is not a multiple of patch_size*spatial_merge_size = {unit}", cfg.window_size)));
    }
    if let Some(&bad) = cfg.fullatt_block_indexes.iter().find(|&&i| i < 0 || i >= cfg.depth) {
        return Err(v.err("fullatt_block_indexes", format!("block {bad} is outside depth {}", cfg.depth)));
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
        let f = Fields { file, prefix: "", obj: root };
        let d = PreprocessorConfig::default();
        // transformers 5 writes size.{shortest,longest}_edge; older files have min/max_pixels.
        let size = f.get("size").filter(|s| s.is_object());
        let size_field = |key: &str| size.and_then(|s| s.get(key)).and_then(Value::as_i64);
        let min_pixels = f.opt_int("min_pixels")?.or_else(|| size_field("shortest_edge")).unwrap_or(d.min_pixels);
        let max_pixels = f.opt_int("max_pixels")?.or_else(|| size_field("longest_edge")).unwrap_or(d.max_pixels);
        if min_pixels <= 0 || max_pixels < min_pixels {
            return Err(f.err("max_pixels", format!("min_pixels {min_pixels} / max_pixels {max_pixels} are not a valid range")));
        }
        let triple = |field: &str, default: [f32; 3]| -> Result<[f32; 3], ConfigError> {
            match f.get(field) {
                None => Ok(default),
                Some(Value::Array(a)) if a.len() == 3 && a.iter().all(Value::is_number) => {
                    Ok([a[0].as_f64().unwrap() as f32, a[1].as_f64().unwrap() as f32, a[2].as_f64().unwrap() as f32])
                }
                Some(v) => Err(f.err(field, format!("expected 3 numbers, got {v}"))),
            }
        };
        let cfg = PreprocessorConfig {
            min_pixels,
            max_pixels,
            image_mean: triple("image_mean", d.image_mean)?,
            image_std: triple("image_std", d.image_std)?,
            rescale_factor: f.float_or("rescale_factor", d.rescale_factor as f64)? as f32,
            patch_size: f.int_or("patch_size", d.patch_size)?,
            merge_size: f.int_or("merge_size", d.merge_size)?,
            temporal_patch_size: f.int_or("temporal_patch_size", d.temporal_patch_size)?,
        };
        if cfg.image_std.iter().any(|&s| s <= 0.0) {
            return Err(f.err("image_std", "every entry must be positive"));
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
            (Box::new(|v| v["vision_config"]["depth"] = json!("four")), "config.json: field `vision_config.depth`: expected an integer"),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("vision_config");
                }),
                "field `vision_config`: missing",
            ),
            (Box::new(|v| v["text_config"]["rope_parameters"]["mrope_section"] = json!([2, 3])), "field `rope_parameters.mrope_section`"),
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
        ];
        for (edit, want) in cases {
            let mut v = v5();
            edit(&mut v);
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
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
    }
}
