//! NFKC-normalised text that remembers where each of its bytes came from,
//! so a rule can read "Ｃ" as "C" and still point at the original bytes.

use std::ops::Range;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

pub struct Normalized<'a> {
    original: &'a str,
    /// The NFKC form of `original`.
    pub text: String,
    /// For each byte of `text`, the original bytes it came from (a base
    /// character with its combining marks); empty when `text` is `original`.
    origin: Vec<Range<usize>>,
}

impl<'a> Normalized<'a> {
    pub fn nfkc(original: &'a str) -> Normalized<'a> {
        // ASCII is its own NFKC form: no copy, no map.
        if original.is_ascii() {
            return Normalized { original, text: original.to_string(), origin: Vec::new() };
        }
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let mut chars = original.char_indices().peekable();
        while let Some((start, first)) = chars.next() {
            let mut end = start + first.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !is_combining_mark(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let before = text.len();
            text.extend(original[start..end].nfkc());
            origin.extend(std::iter::repeat_n(start..end, text.len() - before));
        }
        Normalized { original, text, origin }
    }

    /// The original bytes that `span` of `text` came from.
    pub fn original_span(&self, span: Range<usize>) -> Range<usize> {
        if self.origin.is_empty() {
            return span;
        }
        let start = self.origin.get(span.start).map_or(self.original.len(), |r| r.start);
        let end = if span.end > span.start { self.origin[span.end - 1].end } else { start };
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_letters_read_as_ascii_and_point_back() {
        let n = Normalized::nfkc("The option is Ｃ.");
        assert_eq!(n.text, "The option is C.");
        let at = n.text.find('C').unwrap();
        assert_eq!(&"The option is Ｃ."[n.original_span(at..at + 1)], "Ｃ");
        let whole = Normalized::nfkc("e\u{301}Ａ");
        assert_eq!(whole.text, "éA");
        assert_eq!(whole.original_span(0..whole.text.len()), 0.."e\u{301}Ａ".len());
        assert_eq!(Normalized::nfkc("plain").original_span(1..3), 1..3);
    }
}
