//! Error taxonomy: what kind of mistake a predicted direction is.
//!
//! `classify(gold, predicted)` checks the rows top to bottom; the first that
//! matches wins.
//!
//! | Kind           | Rule                                                            | Examples                                   |
//! |----------------|-----------------------------------------------------------------|--------------------------------------------|
//! | Unparsed       | no prediction, or no gold direction                             | "I can't tell"                             |
//! | Correct        | same heading and same vertical part                             | above = up = top                           |
//! | HorizontalFlip | predicted = gold mirrored (only left/right swapped)             | left/right, front-left/front-right, above-left/above-right |
//! | VerticalFlip   | predicted = gold with up/down swapped, heading unchanged        | top/bottom, above/below, front-up/front-down |
//! | DepthFlip      | predicted = gold with front/back swapped, rest unchanged        | front/back, front-left/back-left, front-up/back-up |
//! | Orthogonal     | same vertical part, headings 90 degrees apart                   | front/left, back/right                     |
//! | Adjacent       | same vertical part, headings 45 degrees apart                   | front/front-left, left/back-left           |
//! | Other          | anything else: opposite diagonals (front-left/back-right), 135 degrees, a component added or dropped (front/front-up), several parts wrong | |
//!
//! Why this order: front-left/front-right is both a mirror and 90 degrees
//! apart; the research counts it as a horizontal flip, so flips come first.

use super::direction::Direction;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Correct,
    HorizontalFlip,
    VerticalFlip,
    DepthFlip,
    Orthogonal,
    Adjacent,
    Other,
    Unparsed,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Correct,
        ErrorKind::HorizontalFlip,
        ErrorKind::VerticalFlip,
        ErrorKind::DepthFlip,
        ErrorKind::Orthogonal,
        ErrorKind::Adjacent,
        ErrorKind::Other,
        ErrorKind::Unparsed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Correct => "correct",
            ErrorKind::HorizontalFlip => "horizontal_flip",
            ErrorKind::VerticalFlip => "vertical_flip",
            ErrorKind::DepthFlip => "depth_flip",
            ErrorKind::Orthogonal => "orthogonal",
            ErrorKind::Adjacent => "adjacent",
            ErrorKind::Other => "other",
            ErrorKind::Unparsed => "unparsed",
        }
    }

    /// The name in words, for the screen ("horizontal flip").
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::HorizontalFlip => "horizontal flip",
            ErrorKind::VerticalFlip => "vertical flip",
            ErrorKind::DepthFlip => "depth flip",
            k => k.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_error(self) -> bool {
        !matches!(self, ErrorKind::Correct)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Classifies a prediction against the gold direction (see the module table).
pub fn classify(gold: Option<Direction>, predicted: Option<Direction>) -> ErrorKind {
    let (Some(g), Some(p)) = (gold, predicted) else {
        return ErrorKind::Unparsed;
    };
    if g == p {
        return ErrorKind::Correct;
    }
    if g.has_lateral() && p == g.mirrored() {
        return ErrorKind::HorizontalFlip;
    }
    if g.vertical.is_some() && p == g.vertically_flipped() {
        return ErrorKind::VerticalFlip;
    }
    if g.heading.is_some_and(|h| h.depth_sign() != 0) && p == g.depth_flipped() {
        return ErrorKind::DepthFlip;
    }
    if g.vertical == p.vertical {
        if let (Some(gh), Some(ph)) = (g.heading, p.heading) {
            match gh.angle_between(ph) {
                90 => return ErrorKind::Orthogonal,
                45 => return ErrorKind::Adjacent,
                _ => {}
            }
        }
    }
    ErrorKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::parse::parse_option;
    use ErrorKind::*;

    fn k(gold: &str, pred: &str) -> ErrorKind {
        let g = parse_option(gold);
        assert!(g.is_some() || gold.is_empty(), "gold {gold} must parse");
        classify(g, parse_option(pred))
    }

    #[test]
    fn kinds_are_written_by_their_names() {
        for k in ErrorKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
        }
    }

    #[test]
    fn table_row_unparsed() {
        assert_eq!(k("left", "I cannot tell"), Unparsed);
        assert_eq!(k("", "left"), Unparsed);
    }

    #[test]
    fn table_row_correct() {
        assert_eq!(k("left", "left"), Correct);
        assert_eq!(k("above", "up"), Correct);
        assert_eq!(k("above", "top"), Correct);
        assert_eq!(k("down", "below"), Correct);
        assert_eq!(k("front-up", "front-up"), Correct);
        assert_eq!(k("above-left", "up-left"), Correct);
    }

    #[test]
    fn table_row_horizontal_flip() {
        assert_eq!(k("left", "right"), HorizontalFlip);
        assert_eq!(k("right", "left"), HorizontalFlip);
        assert_eq!(k("front-left", "front-right"), HorizontalFlip);
        assert_eq!(k("back-right", "back-left"), HorizontalFlip);
        assert_eq!(k("above-left", "above-right"), HorizontalFlip);
        assert_eq!(k("down-right", "down-left"), HorizontalFlip);
    }

    #[test]
    fn table_row_vertical_flip() {
        assert_eq!(k("above", "down"), VerticalFlip);
        assert_eq!(k("top", "bottom"), VerticalFlip);
        assert_eq!(k("on", "under"), VerticalFlip);
        assert_eq!(k("front-up", "front-down"), VerticalFlip);
        assert_eq!(k("back-down", "back-up"), VerticalFlip);
        assert_eq!(k("above-left", "down-left"), VerticalFlip);
    }

    #[test]
    fn table_row_depth_flip() {
        assert_eq!(k("front", "back"), DepthFlip);
        assert_eq!(k("behind", "in front of"), DepthFlip);
        assert_eq!(k("front-left", "back-left"), DepthFlip);
        assert_eq!(k("back-right", "front-right"), DepthFlip);
        assert_eq!(k("front-up", "back-up"), DepthFlip);
    }

    #[test]
    fn table_row_orthogonal() {
        assert_eq!(k("front", "left"), Orthogonal);
        assert_eq!(k("front", "right"), Orthogonal);
        assert_eq!(k("back", "left"), Orthogonal);
        assert_eq!(k("left", "front"), Orthogonal);
        assert_eq!(k("front-right", "back-right"), DepthFlip, "a depth flip before 90 degrees");
        assert_eq!(k("front-left", "back-left"), DepthFlip);
        assert_eq!(k("front-up", "left-up"), Orthogonal);
    }

    #[test]
    fn table_row_adjacent() {
        assert_eq!(k("front", "front-left"), Adjacent);
        assert_eq!(k("front-left", "left"), Adjacent);
        assert_eq!(k("left", "back-left"), Adjacent);
        assert_eq!(k("back", "back-right"), Adjacent);
        assert_eq!(k("front-up", "front-left-up"), Adjacent);
    }

    #[test]
    fn table_row_other() {
        assert_eq!(k("front-left", "back-right"), Other, "opposite diagonal");
        assert_eq!(k("left", "front-right"), Other, "135 degrees");
        assert_eq!(k("front", "front-up"), Other, "component added");
        assert_eq!(k("front-up", "front"), Other, "component dropped");
        assert_eq!(k("above", "left"), Other);
        assert_eq!(k("above-left", "down-right"), Other, "both parts flipped");
        assert_eq!(k("front-up", "left-down"), Other);
    }

    #[test]
    fn flips_take_precedence_over_angles() {
        // 90 degrees apart, yet a mirror: the research counts it as a flip.
        assert_eq!(k("front-left", "front-right"), HorizontalFlip);
    }

    #[test]
    fn names_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
    }
}
