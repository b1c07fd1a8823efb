//! The direction vocabulary of spatial benchmarks as a small algebra.
//!
//! A [`Direction`] has up to two components: a heading on the horizontal
//! plane (8 compass points, `front` = towards the viewer's forward axis) and
//! a vertical component (up/down). "front-up", "above-left" and "down-right"
//! are combinations; "above", "top" and "on" all mean [`Vertical::Up`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the 8 horizontal headings, clockwise from front in 45 degree steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Heading {
    Front,
    FrontRight,
    Right,
    BackRight,
    Back,
    BackLeft,
    Left,
    FrontLeft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Vertical {
    Up,
    Down,
}

const HEADINGS: [Heading; 8] = [
    Heading::Front,
    Heading::FrontRight,
    Heading::Right,
    Heading::BackRight,
    Heading::Back,
    Heading::BackLeft,
    Heading::Left,
    Heading::FrontLeft,
];

impl Heading {
    pub const ALL: [Heading; 8] = HEADINGS;

    /// Degrees clockwise from front (front=0, right=90, back=180, left=270).
    pub fn angle(self) -> u16 {
        HEADINGS.iter().position(|h| *h == self).unwrap() as u16 * 45
    }

    pub fn from_angle(deg: i32) -> Heading {
        HEADINGS[(deg.rem_euclid(360) / 45) as usize]
    }

    /// Left and right swapped (a mirror about the front-back axis).
    pub fn mirrored(self) -> Heading {
        Heading::from_angle(360 - self.angle() as i32)
    }

    /// Front and back swapped (a mirror about the left-right axis).
    pub fn depth_flipped(self) -> Heading {
        Heading::from_angle(180 - self.angle() as i32)
    }

    /// Smallest angle between two headings, 0..=180.
    pub fn angle_between(self, other: Heading) -> u16 {
        let d = (self.angle() as i32 - other.angle() as i32).rem_euclid(360);
        d.min(360 - d) as u16
    }

    /// The front/back part of a heading: +1 front, -1 back, 0 neither.
    pub fn depth_sign(self) -> i8 {
        match self {
            Heading::Front | Heading::FrontLeft | Heading::FrontRight => 1,
            Heading::Back | Heading::BackLeft | Heading::BackRight => -1,
            _ => 0,
        }
    }

    /// The left/right part of a heading: +1 right, -1 left, 0 neither.
    pub fn lateral_sign(self) -> i8 {
        match self {
            Heading::Right | Heading::FrontRight | Heading::BackRight => 1,
            Heading::Left | Heading::FrontLeft | Heading::BackLeft => -1,
            _ => 0,
        }
    }

    /// Build a heading from its depth and lateral parts; (0, 0) is none.
    pub fn from_parts(depth: i8, lateral: i8) -> Option<Heading> {
        Some(match (depth.signum(), lateral.signum()) {
            (1, 0) => Heading::Front,
            (1, 1) => Heading::FrontRight,
            (0, 1) => Heading::Right,
            (-1, 1) => Heading::BackRight,
            (-1, 0) => Heading::Back,
            (-1, -1) => Heading::BackLeft,
            (0, -1) => Heading::Left,
            (1, -1) => Heading::FrontLeft,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Heading::Front => "front",
            Heading::FrontRight => "front-right",
            Heading::Right => "right",
            Heading::BackRight => "back-right",
            Heading::Back => "back",
            Heading::BackLeft => "back-left",
            Heading::Left => "left",
            Heading::FrontLeft => "front-left",
        }
    }
}

impl Vertical {
    pub fn flipped(self) -> Vertical {
        match self {
            Vertical::Up => Vertical::Down,
            Vertical::Down => Vertical::Up,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Vertical::Up => "up",
            Vertical::Down => "down",
        }
    }
}

/// A direction with a horizontal heading, a vertical component, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Direction {
    pub heading: Option<Heading>,
    pub vertical: Option<Vertical>,
}

impl Direction {
    pub fn new(heading: Option<Heading>, vertical: Option<Vertical>) -> Option<Direction> {
        (heading.is_some() || vertical.is_some()).then_some(Direction { heading, vertical })
    }
    pub const fn horizontal(h: Heading) -> Direction {
        Direction { heading: Some(h), vertical: None }
    }
    pub const fn vertical(v: Vertical) -> Direction {
        Direction { heading: None, vertical: Some(v) }
    }
    pub const fn both(h: Heading, v: Vertical) -> Direction {
        Direction { heading: Some(h), vertical: Some(v) }
    }

    /// Left and right swapped in every component (a horizontal image flip).
    pub fn mirrored(self) -> Direction {
        Direction { heading: self.heading.map(Heading::mirrored), vertical: self.vertical }
    }

    /// Up and down swapped.
    pub fn vertically_flipped(self) -> Direction {
        Direction { heading: self.heading, vertical: self.vertical.map(Vertical::flipped) }
    }

    /// Front and back swapped.
    pub fn depth_flipped(self) -> Direction {
        Direction { heading: self.heading.map(Heading::depth_flipped), vertical: self.vertical }
    }

    /// True when a mirror changes this direction (it has a left/right part).
    pub fn has_lateral(self) -> bool {
        self.heading.is_some_and(|h| h.lateral_sign() != 0)
    }

    /// Display order: headings clockwise from front, each followed by its
    /// up/down variants; vertical-only directions last.
    pub fn sort_key(self) -> (bool, u16, u8) {
        let v = match self.vertical {
            None => 0,
            Some(Vertical::Up) => 1,
            Some(Vertical::Down) => 2,
        };
        (self.heading.is_none(), self.heading.map_or(0, Heading::angle), v)
    }

    /// Canonical name: heading first, then the vertical part ("front-up",
    /// "left-down", "up").
    pub fn name(self) -> String {
        match (self.heading, self.vertical) {
            (Some(h), Some(v)) => format!("{}-{}", h.name(), v.name()),
            (Some(h), None) => h.name().to_string(),
            (None, Some(v)) => v.name().to_string(),
            (None, None) => unreachable!("a Direction always has a component"),
        }
    }
}

impl Direction {
    /// Every direction, in display order.
    pub fn all() -> impl Iterator<Item = Direction> {
        let verticals = [None, Some(Vertical::Up), Some(Vertical::Down)];
        let headings = std::iter::once(None).chain(HEADINGS.map(Some));
        headings.flat_map(move |h| verticals.into_iter().filter_map(move |v| Direction::new(h, v)))
    }

    /// The direction whose canonical [`name`](Direction::name) is `name`;
    /// None for anything else (on-disk values are names, never free text).
    pub fn from_name(name: &str) -> Option<Direction> {
        Direction::all().find(|d| d.name() == name)
    }
}

/// On disk a direction is its canonical name (`"front-left"`); any other
/// string is an error naming it.
impl Serialize for Direction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Direction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Direction, D::Error> {
        let name = String::deserialize(d)?;
        Direction::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown direction {name:?}")))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_mirror_and_flip_as_geometry_says() {
        for h in Heading::ALL {
            assert_eq!(h.mirrored().mirrored(), h);
            assert_eq!(h.depth_flipped().depth_flipped(), h);
            assert_eq!(h.mirrored().depth_sign(), h.depth_sign());
            assert_eq!(h.mirrored().lateral_sign(), -h.lateral_sign());
            assert_eq!(h.depth_flipped().depth_sign(), -h.depth_sign());
            assert_eq!(Heading::from_parts(h.depth_sign(), h.lateral_sign()), Some(h));
        }
        assert_eq!(Heading::FrontLeft.mirrored(), Heading::FrontRight);
        assert_eq!(Heading::BackLeft.depth_flipped(), Heading::FrontLeft);
        assert_eq!(Heading::Front.angle_between(Heading::Left), 90);
        assert_eq!(Heading::FrontLeft.angle_between(Heading::FrontRight), 90);
        assert_eq!(Heading::Left.angle_between(Heading::FrontRight), 135);
    }

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        assert_eq!(Direction::all().count(), 8 * 3 + 2);
        for d in Direction::all() {
            assert_eq!(Direction::from_name(&d.name()), Some(d));
        }
        for bad in ["", "Left", "to the left", "above", "sideways"] {
            assert_eq!(Direction::from_name(bad), None, "{bad}");
        }
        let d = Direction::from_name("front-left").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"front-left\"");
        assert!(serde_json::from_str::<Direction>("\"sideways\"").unwrap_err().to_string().contains("sideways"));
    }
}
