//! The one sample type every loader produces.

use crate::spatial::Direction;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Where an image's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// A file on disk (resolved against the dataset root; may be missing).
    Path(PathBuf),
    /// Bytes embedded in the dataset file (parquet, base64 TSV cells).
    Bytes { bytes: Arc<[u8]>, name: Option<String> },
}

impl ImageSource {
    /// A short human label: the path, or the embedded name and size.
    pub fn label(&self) -> String {
        match self {
            ImageSource::Path(p) => p.display().to_string(),
            ImageSource::Bytes { bytes, name } => {
                format!("{} ({} bytes embedded)", name.as_deref().unwrap_or("image"), bytes.len())
            }
        }
    }
    pub fn is_missing(&self) -> bool {
        matches!(self, ImageSource::Path(p) if !p.is_file())
    }
}

/// Whose frame of reference the question is asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Perspective {
    Camera,
    Person,
    #[default]
    None,
}

impl Perspective {
    pub fn parse(s: &str) -> Option<Perspective> {
        match s.trim().to_ascii_lowercase().as_str() {
            "camera" => Some(Perspective::Camera),
            "person" | "agent" => Some(Perspective::Person),
            "none" | "" => Some(Perspective::None),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Perspective::Camera => "camera",
            Perspective::Person => "person",
            Perspective::None => "none",
        }
    }
}

/// How the gold answer is expressed, which decides how answers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStyle {
    /// Multiple choice answered with an option letter.
    #[default]
    Letter,
    /// Answered with an option's word ("left"), as in AdaptVis prompts.
    Word,
    /// A spatial relation phrase ("behind", "on top of"), as AdaptVis's VSR prompts ask.
    Relation,
    /// yes / no (VSR).
    YesNo,
    /// A number (CLEVR counting).
    Number,
}

/// An axis-aligned box in original-image pixels (x0, y0) - (x1, y1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Which of the sample's images the box is on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl BoundingBox {
    /// Refuses a box that is inverted, empty, or wholly outside a
    /// `width` x `height` image (a box only partly outside is kept: the part
    /// inside is what it marks). The message names the image size.
    pub fn check_within(&self, width: u32, height: u32) -> Result<(), String> {
        let (w, h) = (width as f32, height as f32);
        let corners = format!("({}, {}, {}, {})", self.x0, self.y0, self.x1, self.y1);
        if !(self.x1 > self.x0 && self.y1 > self.y0) {
            return Err(format!("box {corners} is empty or inverted (x1 must exceed x0, y1 y0)"));
        }
        if self.x0 >= w || self.y0 >= h || self.x1 <= 0.0 || self.y1 <= 0.0 {
            return Err(format!("box {corners} lies outside the {width}x{height} image"));
        }
        Ok(())
    }

    /// `x0,y0,x1,y1` in original pixels, finite, x1 > x0 and y1 > y0; a clap value parser.
    pub fn parse(s: &str) -> Result<BoundingBox, String> {
        let n: Vec<f32> = s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("`{}` in `{s}` is not a finite number", x.trim()))
            })
            .collect::<Result<_, _>>()?;
        match n.as_slice() {
            [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Ok(BoundingBox::new(*x0, *y0, *x1, *y1)),
            _ => Err(format!("`{s}` is not x0,y0,x1,y1 with x1 > x0 and y1 > y0")),
        }
    }

    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox { x0, y0, x1, y1, label: None, image: 0 }
    }
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    /// The same box after mirroring an image of width `w`.
    pub fn mirrored(&self, w: f32) -> BoundingBox {
        BoundingBox { x0: w - self.x1, x1: w - self.x0, ..self.clone() }
    }
}

/// One option of a multiple-choice question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerOption {
    pub letter: char,
    pub text: String,
    /// The direction the option text names, when it names one.
    pub direction: Option<Direction>,
}

impl AnswerOption {
    pub fn new(letter: char, text: impl Into<String>) -> AnswerOption {
        let text = text.into();
        let direction = crate::spatial::parse_option(&text);
        AnswerOption { letter, text, direction }
    }
}

/// Metadata field holding the reply to train on instead of the gold letter
/// (a distilled rationale, or a synthetic scene's direction words).
pub const TARGET_FIELD: &str = "target";

/// Options are lettered A to Z.
pub const MAX_OPTIONS: usize = 26;

/// A benchmark item, whatever format it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: String,
    pub dataset: String,
    pub category: String,
    pub images: Vec<ImageSource>,
    pub question: String,
    pub options: Vec<AnswerOption>,
    pub gold_letter: Option<char>,
    pub gold_text: Option<String>,
    pub gold_direction: Option<Direction>,
    pub answer_style: AnswerStyle,
    pub perspective: Perspective,
    /// The reference object ("the man in white") when known.
    pub reference: Option<String>,
    pub boxes: Vec<BoundingBox>,
    pub split: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Sample {
    pub fn new(id: impl Into<String>, dataset: impl Into<String>) -> Sample {
        Sample {
            id: id.into(),
            dataset: dataset.into(),
            category: String::new(),
            images: Vec::new(),
            question: String::new(),
            options: Vec::new(),
            gold_letter: None,
            gold_text: None,
            gold_direction: None,
            answer_style: AnswerStyle::Letter,
            perspective: Perspective::None,
            reference: None,
            boxes: Vec::new(),
            split: None,
            metadata: serde_json::Map::new(),
        }
    }

    pub fn option(&self, letter: char) -> Option<&AnswerOption> {
        self.options.iter().find(|o| o.letter == letter)
    }

    /// Sets options from texts, lettered A, B, C, ... More than 26 is an
    /// error: there are no letters for them, and cutting them off would
    /// silently change the question.
    pub fn set_options<S: Into<String>>(&mut self, texts: impl IntoIterator<Item = S>) -> Result<(), String> {
        let texts: Vec<String> = texts.into_iter().map(Into::into).collect();
        if texts.len() > MAX_OPTIONS {
            return Err(format!("{} options; at most {MAX_OPTIONS} can be lettered A to Z", texts.len()));
        }
        self.options = texts.into_iter().zip('A'..='Z').map(|(t, l)| AnswerOption::new(l, t)).collect();
        Ok(())
    }

    /// Sets the gold answer from a letter; text and direction follow from it.
    pub fn set_gold_letter(&mut self, letter: char) -> bool {
        let Some(opt) = self.option(letter).cloned() else { return false };
        self.gold_letter = Some(letter);
        self.gold_text = Some(opt.text);
        self.gold_direction = opt.direction;
        true
    }

    /// Sets the gold answer from option text (case-insensitive match).
    pub fn set_gold_text(&mut self, text: &str) -> bool {
        let want = text.trim().to_lowercase();
        match self.options.iter().find(|o| o.text.trim().to_lowercase() == want) {
            Some(o) => {
                let l = o.letter;
                self.set_gold_letter(l)
            }
            None => false,
        }
    }

    /// The options as prompt lines ("A. left").
    pub fn choices_text(&self) -> String {
        self.options.iter().map(|o| format!("{}. {}", o.letter, o.text)).collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod box_tests {
    use super::BoundingBox;

    #[test]
    fn boxes_outside_inverted_or_empty_are_refused_naming_the_image() {
        let b = |x0, y0, x1, y1| BoundingBox::new(x0, y0, x1, y1).check_within(392, 392);
        assert!(b(380.0, 380.0, 392.0, 392.0).is_ok());
        assert!(b(-10.0, -10.0, 20.0, 20.0).is_ok(), "partly outside: the part inside counts");
        let out = b(5000.0, 5000.0, 6000.0, 6000.0).unwrap_err();
        assert!(out.contains("outside the 392x392 image"), "{out}");
        assert!(b(30.0, 10.0, 20.0, 40.0).unwrap_err().contains("empty or inverted"));
        assert!(b(10.0, 10.0, 10.0, 40.0).is_err());
        assert!(b(f32::NAN, 0.0, 10.0, 10.0).is_err());
    }

    #[test]
    fn boxes_on_the_command_line_are_four_finite_numbers() {
        assert_eq!(BoundingBox::parse("1, 2,30,40").unwrap(), BoundingBox::new(1.0, 2.0, 30.0, 40.0));
        assert!(BoundingBox::parse("0,0,inf,10").unwrap_err().contains("`inf` in `0,0,inf,10` is not a finite number"));
        assert!(BoundingBox::parse("0,0,nan,10").is_err());
        assert!(BoundingBox::parse("0,0,10").unwrap_err().contains("is not x0,y0,x1,y1"));
        assert!(BoundingBox::parse("5,0,1,10").is_err());
    }
}
