//! Qwen2.5-VL grounding output: `[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`,
//! fenced in ```json or bare, one object or a list, in the resized input
//! image's pixels; mapped back to the original image.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct GroundedBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub label: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GroundingError {
    #[error("no JSON in the model's answer: {0:?}")]
    NoJson(String),
    #[error("the model's JSON does not parse: {0}")]
    BadJson(String),
    #[error("no `bbox_2d` with 4 numbers in the model's JSON: {0}")]
    NoBox(String),
}

/// The JSON text inside a ```json fence, or from the first [ or { to its last closer.
fn json_span(text: &str) -> Option<&str> {
    if let Some(start) = text.find("```") {
        let body = &text[start + 3..];
        let body = body.strip_prefix("json").unwrap_or(body);
        let end = body.find("```").unwrap_or(body.len());
        return Some(body[..end].trim());
    }
    let start = text.find(['[', '{'])?;
    let end = text.rfind([']', '}'])?;
    (end > start).then(|| &text[start..=end])
}

fn boxes_in(v: &Value, out: &mut Vec<GroundedBox>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| boxes_in(i, out)),
        Value::Object(o) => {
            let nums: Option<Vec<f32>> = o
                .get("bbox_2d")
                .or_else(|| o.get("bbox"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect());
            if let Some(n) = nums.filter(|n| n.len() == 4) {
                let label = o.get("label").and_then(Value::as_str).map(str::to_string);
                out.push(GroundedBox { x0: n[0].min(n[2]), y0: n[1].min(n[3]), x1: n[0].max(n[2]), y1: n[1].max(n[3]), label });
            }
        }
        _ => {}
    }
}

/// Boxes from a grounding answer, in the coordinates the model saw.
pub fn parse_grounding(answer: &str) -> Result<Vec<GroundedBox>, GroundingError> {
    let span = json_span(answer).ok_or_else(|| GroundingError::NoJson(answer.chars().take(80).collect()))?;
    let v: Value = serde_json::from_str(span)
        .map_err(|e| GroundingError::BadJson(format!("{e} in {:?}", span.chars().take(80).collect::<String>())))?;
    let mut out = Vec::new();
    boxes_in(&v, &mut out);
    if out.is_empty() {
        return Err(GroundingError::NoBox(span.chars().take(80).collect()));
    }
    Ok(out)
}

impl GroundedBox {
    /// From the resized input's pixels to the original image's.
    pub fn to_original(&self, resized: (u32, u32), original: (u32, u32)) -> GroundedBox {
        let sx = original.0 as f32 / resized.0 as f32;
        let sy = original.1 as f32 / resized.1 as f32;
        let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32);
        GroundedBox {
            x0: clamp(self.x0 * sx, original.0),
            y0: clamp(self.y0 * sy, original.1),
            x1: clamp(self.x1 * sx, original.0),
            y1: clamp(self.y1 * sy, original.1),
            label: self.label.clone(),
        }
    }
}

/// The prompt Qwen2.5-VL is trained to answer with boxes.
pub fn grounding_prompt(phrase: &str) -> String {
    format!("Locate the {phrase} in the image and output its bbox coordinates in JSON format.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_bare_single_and_malformed() {
        let fenced = "```json\n[\n\t{\"bbox_2d\": [10, 20, 110, 220], \"label\": \"boy\"}\n]\n```";
        let b = parse_grounding(fenced).unwrap();
        assert_eq!(b, vec![GroundedBox { x0: 10.0, y0: 20.0, x1: 110.0, y1: 220.0, label: Some("boy".into()) }]);
        let bare = "Sure: {\"bbox_2d\": [30.5, 8, 5, 40]}";
        let b = parse_grounding(bare).unwrap();
        assert_eq!((b[0].x0, b[0].x1), (5.0, 30.5), "corners are ordered");
        assert!(matches!(parse_grounding("I cannot see a boy."), Err(GroundingError::NoJson(_))));
        assert!(matches!(parse_grounding("```json\n[{\"bbox_2d\": [1, 2, 3\n```"), Err(GroundingError::BadJson(_))));
        assert!(matches!(parse_grounding("[{\"label\": \"boy\"}]"), Err(GroundingError::NoBox(_))));
        assert!(matches!(parse_grounding("{\"bbox_2d\": [1, 2, 3]}"), Err(GroundingError::NoBox(_))));
        assert!(parse_grounding("").is_err());
        assert!(parse_grounding("]{").is_err());
    }

    #[test]
    fn maps_back_to_the_original() {
        let b = GroundedBox { x0: 28.0, y0: 14.0, x1: 56.0, y1: 280.0, label: None };
        let o = b.to_original((280, 420), (560, 840));
        assert_eq!((o.x0, o.y0, o.x1, o.y1), (56.0, 28.0, 112.0, 560.0));
        let clipped = GroundedBox { x0: -5.0, y0: 0.0, x1: 999.0, y1: 10.0, label: None }.to_original((100, 100), (100, 100));
        assert_eq!((clipped.x0, clipped.x1), (0.0, 100.0));
    }
}
