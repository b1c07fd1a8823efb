//! What one answer was judged to be: the one value a judge produces and
//! every pane, report and row reads.

use super::ErrorKind;

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Verdict {
    Correct,
    /// An answer was read and it is not the gold; why (never `Correct` or `Unparsed`).
    Wrong(ErrorKind),
    /// No answer could be read from the output.
    Unparsed,
    /// The sample could not be asked (an unreadable image, an engine error).
    Failed(String),
    /// There is no gold to judge against (a question the user typed).
    #[default]
    Unjudged,
}

impl Verdict {
    /// From an error kind as the taxonomy classifies it.
    pub fn of_kind(kind: ErrorKind) -> Verdict {
        match kind {
            ErrorKind::Correct => Verdict::Correct,
            ErrorKind::Unparsed => Verdict::Unparsed,
            k => Verdict::Wrong(k),
        }
    }

    pub fn is_correct(&self) -> bool {
        matches!(self, Verdict::Correct)
    }

    /// Whether it counts against accuracy's denominator: judged, and not a failure.
    pub fn is_judged(&self) -> bool {
        matches!(self, Verdict::Correct | Verdict::Wrong(_) | Verdict::Unparsed)
    }

    /// The error kind of a judged miss (`Unparsed` included).
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Verdict::Wrong(k) => Some(*k),
            Verdict::Unparsed => Some(ErrorKind::Unparsed),
            _ => None,
        }
    }

    /// One cell wide.
    pub fn glyph(&self) -> &'static str {
        match self {
            Verdict::Correct => "✓",
            Verdict::Wrong(_) => "✗",
            Verdict::Unparsed => "?",
            Verdict::Failed(_) => "!",
            Verdict::Unjudged => "·",
        }
    }

    /// The verdict in words, without the glyph: "correct", "wrong · horizontal flip".
    pub fn words(&self) -> String {
        match self {
            Verdict::Correct => "correct".into(),
            Verdict::Wrong(k) => format!("wrong · {}", k.label()),
            Verdict::Unparsed => "unparsed".into(),
            Verdict::Failed(reason) => format!("failed: {reason}"),
            Verdict::Unjudged => "not judged (no gold)".into(),
        }
    }

    /// The glyph and the words: "✗ wrong · horizontal flip".
    pub fn label(&self) -> String {
        format!("{} {}", self.glyph(), self.words())
    }

    /// A short outcome name for grouping rows: `correct`, an error kind's
    /// name, `failed` or `unjudged`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::Wrong(k) => k.name(),
            Verdict::Unparsed => "unparsed",
            Verdict::Failed(_) => "failed",
            Verdict::Unjudged => "unjudged",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_themselves_in_words_never_right() {
        assert_eq!(Verdict::Correct.label(), "✓ correct");
        assert_eq!(Verdict::Wrong(ErrorKind::HorizontalFlip).label(), "✗ wrong · horizontal flip");
        assert_eq!(Verdict::Unparsed.label(), "? unparsed");
        assert_eq!(Verdict::Failed("cannot decode image".into()).label(), "! failed: cannot decode image");
        for v in [Verdict::Correct, Verdict::Wrong(ErrorKind::Orthogonal), Verdict::Unparsed, Verdict::Unjudged] {
            assert!(!v.label().contains("right"), "{v:?}");
        }
        assert_eq!(Verdict::of_kind(ErrorKind::Correct), Verdict::Correct);
        assert_eq!(Verdict::of_kind(ErrorKind::Unparsed).error_kind(), Some(ErrorKind::Unparsed));
    }
}
