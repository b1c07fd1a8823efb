//! Text -> [`Direction`]. Option text is parsed strictly (every word must be
//! a direction word or a filler); free text is scanned for direction words and
//! rejected when they disagree or are negated. Unknown stays unknown.

use super::direction::{Direction, Heading, Vertical};

/// What a single word contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Depth(i8),
    Lateral(i8),
    Vert(Vertical),
    Filler,
    Negation,
    Unknown,
}

/// Multi-word relations rewritten to one word before tokenising; order
/// matters (longest first).
const PHRASES: &[(&str, &str)] = &[
    ("in front of", " front "),
    ("on top of", " up "),
    ("at the top of", " up "),
    ("at the bottom of", " down "),
    ("on the left", " left "),
    ("on the right", " right "),
    ("to the left", " left "),
    ("to the right", " right "),
    ("at the back of", " back "),
    ("in back of", " back "),
    ("left hand", " left "),
    ("right hand", " right "),
    ("next to", " unknown "),
    ("far from", " unknown "),
    ("close to", " unknown "),
];

fn word(w: &str, on_means_up: bool) -> Word {
    match w {
        "front" | "forward" | "forwards" | "ahead" => Word::Depth(1),
        "back" | "behind" | "rear" | "backward" | "backwards" => Word::Depth(-1),
        "left" | "leftward" | "leftwards" => Word::Lateral(-1),
        "right" | "rightward" | "rightwards" => Word::Lateral(1),
        "up" | "above" | "top" | "upper" | "upward" | "upwards" | "over" => Word::Vert(Vertical::Up),
        "down" | "below" | "bottom" | "lower" | "downward" | "downwards" | "under" | "underneath" | "beneath" => Word::Vert(Vertical::Down),
        "on" if on_means_up => Word::Vert(Vertical::Up),
        "not" | "no" | "neither" | "nor" | "isn't" | "never" => Word::Negation,
        "of" | "the" | "to" | "side" | "is" | "it" | "directly" | "slightly" | "a" | "and" | "in" | "at" | "on" | "its" | "toward"
        | "towards" | "direction" => Word::Filler,
        _ => Word::Unknown,
    }
}

fn normalise(text: &str) -> String {
    let mut s: String = text.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' }).collect();
    s = format!(" {} ", s.split_whitespace().collect::<Vec<_>>().join(" "));
    for (from, to) in PHRASES {
        s = s.replace(&format!(" {from} "), &format!(" {} ", to.trim()));
        s = s.replace(&format!(" {from} "), &format!(" {} ", to.trim()));
    }
    s
}

/// Folds the words' contributions into one direction, or None when a
/// component is contradicted (left and right) or nothing was said.
fn combine(words: impl Iterator<Item = Word>) -> Option<Direction> {
    let (mut depth, mut lateral, mut vert) = (None::<i8>, None::<i8>, None::<Vertical>);
    fn merge<T: PartialEq + Copy>(slot: &mut Option<T>, v: T) -> bool {
        match slot {
            Some(old) if *old != v => false,
            _ => {
                *slot = Some(v);
                true
            }
        }
    }
    for w in words {
        let ok = match w {
            Word::Depth(d) => merge(&mut depth, d),
            Word::Lateral(l) => merge(&mut lateral, l),
            Word::Vert(v) => merge(&mut vert, v),
            Word::Negation => false,
            Word::Filler | Word::Unknown => true,
        };
        if !ok {
            return None;
        }
    }
    let heading = Heading::from_parts(depth.unwrap_or(0), lateral.unwrap_or(0));
    Direction::new(heading, vert)
}

/// Parses option text such as "front-left", "above", "down-right",
/// "to the left of", "in front of", "on", "under". Any word that is neither a
/// direction nor a filler makes the whole text unknown.
pub fn parse_option(text: &str) -> Option<Direction> {
    let norm = normalise(text);
    let words: Vec<Word> = norm.split_whitespace().map(|w| word(w, true)).collect();
    if words.iter().any(|w| matches!(w, Word::Unknown)) {
        return None;
    }
    combine(words.into_iter())
}

/// Scans free text ("The counter is to the right of the fridge.") for a
/// direction. Returns None when direction words disagree, are negated, or
/// are absent. "on" is not read as up here: in prose it rarely means that.
pub fn parse_free(text: &str) -> Option<Direction> {
    let norm = normalise(text);
    combine(norm.split_whitespace().map(|w| word(w, false)))
}

/// Finds the spatial relation in a caption such as "A mug on a table" or
/// "A cup to the left of a plate" (WhatsUp, VSR). Here "on" does mean up.
pub fn parse_relation(text: &str) -> Option<Direction> {
    let norm = normalise(text);
    combine(norm.split_whitespace().map(|w| word(w, true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Heading::*;
    use Vertical::*;

    fn h(x: Heading) -> Option<Direction> {
        Some(Direction::horizontal(x))
    }

    #[test]
    fn viewspatial_vocabulary() {
        let cases = [
            ("left", h(Left)),
            ("right", h(Right)),
            ("front", h(Front)),
            ("back", h(Back)),
            ("front-left", h(FrontLeft)),
            ("front-right", h(FrontRight)),
            ("back-left", h(BackLeft)),
            ("back-right", h(BackRight)),
            ("above", Some(Direction::vertical(Up))),
            ("down", Some(Direction::vertical(Down))),
            ("front-up", Some(Direction::both(Front, Up))),
            ("back-down", Some(Direction::both(Back, Down))),
            ("front-down", Some(Direction::both(Front, Down))),
            ("back-up", Some(Direction::both(Back, Up))),
            ("above-left", Some(Direction::both(Left, Up))),
            ("above-right", Some(Direction::both(Right, Up))),
            ("down-left", Some(Direction::both(Left, Down))),
            ("down-right", Some(Direction::both(Right, Down))),
        ];
        for (text, want) in cases {
            assert_eq!(parse_option(text), want, "{text}");
        }
    }

    #[test]
    fn synonyms_and_relations() {
        assert_eq!(parse_option("to the left of"), h(Left));
        assert_eq!(parse_option("Left"), h(Left));
        assert_eq!(parse_option("in front of"), h(Front));
        assert_eq!(parse_option("behind"), h(Back));
        assert_eq!(parse_option("on"), Some(Direction::vertical(Up)));
        assert_eq!(parse_option("on top of"), Some(Direction::vertical(Up)));
        assert_eq!(parse_option("under"), Some(Direction::vertical(Down)));
        assert_eq!(parse_option("beneath"), Some(Direction::vertical(Down)));
        assert_eq!(parse_option("top"), Some(Direction::vertical(Up)));
        assert_eq!(parse_option("bottom"), Some(Direction::vertical(Down)));
        assert_eq!(parse_option("upper left"), Some(Direction::both(Left, Up)));
        assert_eq!(parse_option("left hand"), h(Left));
    }

    #[test]
    fn unknown_words_stay_unknown() {
        for text in ["yes", "3", "next to", "near", "left of the blue cube", "", "diagonal", "left-right", "up and down"] {
            assert_eq!(parse_option(text), None, "{text}");
        }
    }

    #[test]
    fn free_text() {
        assert_eq!(parse_free("The counter is to the right of the refrigerator."), h(Right));
        assert_eq!(parse_free("It is in front of and to the left of the chair"), h(FrontLeft));
        assert_eq!(parse_free("The cup is on the table"), None);
        assert_eq!(parse_free("left, or maybe right"), None);
        assert_eq!(parse_free("It is not on the left"), None);
        assert_eq!(parse_free("I cannot tell"), None);
    }

    #[test]
    fn captions() {
        assert_eq!(parse_relation("A mug on a table"), Some(Direction::vertical(Up)));
        assert_eq!(parse_relation("A mug under a table"), Some(Direction::vertical(Down)));
        assert_eq!(parse_relation("A cup to the left of a plate"), h(Left));
        assert_eq!(parse_relation("A dog in front of a sofa"), h(Front));
        assert_eq!(parse_relation("The cat is next to the dog"), None);
    }
}
