//! The reference object of a spatial question: whose perspective it takes
//! ("From the perspective of the boy in red, ...") or where the viewer stands
//! ("If you stand at the sofa facing ..."), in the question patterns of
//! ViewSpatial-Bench and WhatsUp; and the question rewritten to point at a
//! red box drawn around it.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferencePhrase {
    /// The noun phrase as it stands in the question ("boy wearing the yellow cap").
    pub phrase: String,
    /// Which pattern matched (for coverage reports).
    pub pattern: &'static str,
}

// Each pattern's group 1 is the phrase; a lazy match stops at the phrase's end.
const PATTERNS: &[(&str, &str)] = &[
    ("perspective-of", r"(?i)\bfrom (?:the|this) perspective of (?:the |a |an |this |that )?(.+?)(?:,|\?|$)"),
    ("possessive-perspective", r"(?i)\bfrom (?:this|the|a|an|that) (.+?)[’']s perspective"),
    ("which-hand", r"(?i)\bwhich (?:hand|foot|arm|leg) (?:is|does|did|of|was) (?:this|the|that|a) (\w+)"),
    ("as-the", r"(?i)^as (?:the|a|an) (.+?)(?: in the (?:photo|image|picture|scene)|,|;|\?)"),
    (
        "imagine-youre",
        r"(?i)\bimagine you(?:'re|’re| are) (?:the |a |an )?(.+?)(?: in (?:the|this) (?:photo|image|picture|scene))?(?:,|;|\.|\?| —| -)",
    ),
    ("picture-yourself", r"(?i)\bpicture yourself as (?:the|a|an) (.+?)(?: in the (?:photo|image|picture|scene))?(?:,|;|\.|\?)"),
    ("in-position", r"(?i)\bsuppose you are in (?:the|a|an|this|that) (.+?)[’']s? position"),
    (
        "stand-at",
        r"(?i)\b(?:if you stand|standing|imagine standing|when positioned|positioned) at (?:the |a )?(.+?)(?:,| facing| looking| gazing)",
    ),
    ("relation-to", r"(?i)\bwhere is (?:the |a )?.+? in relation to (?:the |a )?(.+?)(?:\?|$)"),
    ("compared-to", r"(?i)\b(?:in comparison to|with respect to|relative to|compared to) (?:the |a )?(.+?)(?:\?|$)"),
    ("looking-at", r"(?i)\bif you(?:'re|’re| are) looking at (?:the |a )?(.+?),"),
];

fn compiled() -> &'static Vec<(&'static str, Regex)> {
    static RE: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    RE.get_or_init(|| PATTERNS.iter().map(|(n, p)| (*n, Regex::new(p).expect("reference pattern"))).collect())
}

/// The reference phrase of `question`, if one of the known patterns matches.
pub fn reference_phrase(question: &str) -> Option<ReferencePhrase> {
    for (name, re) in compiled() {
        if let Some(m) = re.captures(question).and_then(|c| c.get(1)) {
            let phrase = m.as_str().trim().trim_end_matches(['.', ',', ';']).to_string();
            if !phrase.is_empty() && phrase.split_whitespace().count() <= 14 {
                return Some(ReferencePhrase { phrase, pattern: name });
            }
        }
    }
    None
}

/// The question with "in the {color} bounding box" after the first mention of `phrase`.
pub fn boxed_question(question: &str, phrase: &str, color: &str) -> String {
    match question.find(phrase) {
        Some(i) => {
            let end = i + phrase.len();
            format!("{} in the {color} bounding box{}", &question[..end], &question[end..])
        }
        None => format!("Note the {color} bounding box around the {phrase}. {question}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(q: &str) -> String {
        reference_phrase(q).map(|r| r.phrase).unwrap_or_default()
    }

    #[test]
    fn viewspatial_patterns() {
        assert_eq!(
            phrase("From the perspective of the boy wearing the yellow cap, where is the man holding the trophy in relation to him?"),
            "boy wearing the yellow cap"
        );
        assert_eq!(phrase("From this man's perspective, where is the house located?"), "man");
        assert_eq!(phrase("Which hand is this woman using to hold the phone?"), "woman");
        assert_eq!(phrase("As the man in white in the photo, in which direction are you facing?"), "man in white");
        assert_eq!(phrase("Picture yourself as the man in a white hat; which way are you looking in the scene?"), "man in a white hat");
        assert_eq!(
            phrase("Suppose you are in the woman holding a mobile phone’s position, what direction are you facing?"),
            "woman holding a mobile phone"
        );
        assert_eq!(phrase("Imagine you're the dog, which way are you facing?"), "dog");
        assert_eq!(phrase("Imagine you're the man wearing glasses in this image — which direction are you facing?"), "man wearing glasses");
        assert_eq!(phrase("Imagine you're zebra in this image — which direction are you facing?"), "zebra");
        assert_eq!(phrase("If you stand at television facing counter, where is sink?"), "television");
        assert_eq!(phrase("Standing at window, gazing at table, where should door be?"), "window");
        assert_eq!(phrase("Could you tell me the location of the counter in comparison to the refrigerator?"), "refrigerator");
    }

    #[test]
    fn whatsup_patterns() {
        assert_eq!(phrase("Where is the mug in relation to the table? Answer with left, right, on or under."), "table");
        assert_eq!(reference_phrase("What color is the sky?"), None);
    }

    #[test]
    fn rewrites_the_question() {
        assert_eq!(
            boxed_question("From the perspective of the boy, where is the dog?", "boy", "red"),
            "From the perspective of the boy in the red bounding box, where is the dog?"
        );
        assert!(boxed_question("Where is it?", "cat", "red").starts_with("Note the red bounding box around the cat."));
    }
}
