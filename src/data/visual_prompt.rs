//! Visual prompting: a coloured box drawn around the reference object, and
//! box files mapping sample ids to boxes.

use super::{draw, BoundingBox, DataError};
use image::{DynamicImage, Rgb};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct BoxStyle {
    pub color: Rgb<u8>,
    /// The colour's name as the rewritten question says it.
    pub color_name: String,
    pub width: f32,
}

impl Default for BoxStyle {
    fn default() -> Self {
        BoxStyle { color: Rgb([255, 0, 0]), color_name: "red".into(), width: 3.0 }
    }
}

impl BoxStyle {
    /// `red`, `green`, `blue`, `yellow` or `#rrggbb` (named "red" unless a name is known).
    pub fn parse(color: &str, width: f32) -> anyhow::Result<BoxStyle> {
        let (rgb, name) = match color {
            "red" => ([255, 0, 0], "red"),
            "green" => ([0, 200, 0], "green"),
            "blue" => ([0, 0, 255], "blue"),
            "yellow" => ([255, 220, 0], "yellow"),
            hex if hex.starts_with('#') && hex.len() == 7 => {
                let p = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| anyhow::anyhow!("`{hex}` is not #rrggbb"));
                ([p(1)?, p(3)?, p(5)?], "red")
            }
            other => anyhow::bail!("box colour `{other}` is not red, green, blue, yellow or #rrggbb"),
        };
        if width.is_nan() || width <= 0.0 {
            anyhow::bail!("box width {width} must be positive");
        }
        Ok(BoxStyle { color: Rgb(rgb), color_name: name.into(), width })
    }
}

/// A copy of `image` with `b` outlined.
pub fn draw_box(image: &DynamicImage, b: &BoundingBox, style: &BoxStyle) -> DynamicImage {
    let mut rgb = image.to_rgb8();
    draw::outline_rect(&mut rgb, b.x0, b.y0, b.x1, b.y1, style.width, style.color);
    DynamicImage::ImageRgb8(rgb)
}

fn parse_box(v: &serde_json::Value) -> Option<BoundingBox> {
    let nums = |a: &Vec<serde_json::Value>| -> Option<BoundingBox> {
        let n: Vec<f32> = a.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect();
        (n.len() == 4 && n[2] > n[0] && n[3] > n[1]).then(|| BoundingBox::new(n[0], n[1], n[2], n[3]))
    };
    match v {
        serde_json::Value::Array(a) => nums(a),
        serde_json::Value::Object(o) => {
            o.get("bbox_2d").or_else(|| o.get("bbox")).and_then(|b| b.as_array()).and_then(nums).map(|mut b| {
                b.label = o.get("label").and_then(|l| l.as_str()).map(str::to_string);
                b
            })
        }
        _ => None,
    }
}

/// `{"id": [x0, y0, x1, y1]}`, `{"id": [[...], ...]}` or `{"id": [{"bbox_2d": [...], "label": ...}]}`,
/// in original-image pixels. A bad entry names the file and the id.
pub fn load_box_file(path: &Path) -> Result<HashMap<String, Vec<BoundingBox>>, DataError> {
    let text = crate::fsutil::read_text(path).map_err(|e| DataError::io(path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DataError::Other { path: path.into(), message: format!("not valid JSON: {e}") })?;
    let obj = v.as_object().ok_or_else(|| DataError::Other { path: path.into(), message: "expected an object of id -> boxes".into() })?;
    let mut out = HashMap::new();
    for (id, entry) in obj {
        let boxes: Option<Vec<BoundingBox>> = match entry {
            serde_json::Value::Array(items) if items.first().is_some_and(|i| i.is_number()) => parse_box(entry).map(|b| vec![b]),
            serde_json::Value::Array(items) => items.iter().map(parse_box).collect(),
            other => parse_box(other).map(|b| vec![b]),
        };
        let boxes = boxes.ok_or_else(|| DataError::Other {
            path: path.into(),
            message: format!("id `{id}`: expected [x0, y0, x1, y1] with x1 > x0 and y1 > y0, a list of them, or {{\"bbox_2d\": [...]}}"),
        })?;
        out.insert(id.clone(), boxes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_lands_on_the_right_pixels() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(40, 30, Rgb([10, 10, 10])));
        let out = draw_box(&img, &BoundingBox::new(5.0, 6.0, 20.0, 25.0), &BoxStyle { width: 1.0, ..Default::default() }).to_rgb8();
        assert_eq!(*out.get_pixel(5, 15), Rgb([255, 0, 0]), "left edge");
        assert_eq!(*out.get_pixel(12, 6), Rgb([255, 0, 0]), "top edge");
        assert_eq!(*out.get_pixel(12, 15), Rgb([10, 10, 10]), "inside untouched");
        assert_eq!(*out.get_pixel(30, 15), Rgb([10, 10, 10]), "outside untouched");
    }

    #[test]
    fn box_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boxes.json");
        std::fs::write(&p, r#"{"a": [1, 2, 3, 4], "b": [[0, 0, 5, 5], [1, 1, 2, 2]], "c": [{"bbox_2d": [0, 0, 9, 9], "label": "boy"}]}"#)
            .unwrap();
        let m = load_box_file(&p).unwrap();
        assert_eq!(m["a"], vec![BoundingBox::new(1.0, 2.0, 3.0, 4.0)]);
        assert_eq!(m["b"].len(), 2);
        assert_eq!(m["c"][0].label.as_deref(), Some("boy"));
        std::fs::write(&p, r#"{"a": [4, 2, 3, 4]}"#).unwrap();
        let e = load_box_file(&p).unwrap_err().to_string();
        assert!(e.contains("boxes.json") && e.contains("id `a`"), "{e}");
        assert!(BoxStyle::parse("purple", 2.0).is_err());
        assert_eq!(BoxStyle::parse("#00ff00", 2.0).unwrap().color, Rgb([0, 255, 0]));
    }
}
