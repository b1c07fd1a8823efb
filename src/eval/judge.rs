//! The one judge: from an extraction (what the model's answer was read as)
//! to the prediction, whether it is right, and the error kind. Eval records,
//! live answers and probes are all judged here.

use super::PromptTemplate;
use crate::data::{AnswerStyle, Sample};
use crate::spatial::extract::{
    extract_direction, extract_letter, extract_number, extract_viewspatial, extract_yes_no, ExtractRule, Extraction,
};
use crate::spatial::{classify, parse_option, Direction, ErrorKind};

/// What one answer to one sample was judged to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The chosen option letter, or the extracted answer when the sample has no options.
    pub predicted: Option<String>,
    /// The direction the answer names: the chosen option's, or the one named in words.
    pub predicted_direction: Option<Direction>,
    pub correct: Option<bool>,
    /// Why it is wrong (horizontal flip, orthogonal, ..., unparsed); None when right.
    pub error_kind: Option<ErrorKind>,
}

/// Reads `text` with the rule that fits the sample and the prompt: option
/// letters (ViewSpatial's official rule under its template), yes/no, a
/// number, or a direction in words.
pub fn extract(prompt: &PromptTemplate, s: &Sample, text: &str) -> Extraction {
    if !s.options.is_empty() {
        let valid: Vec<char> = s.options.iter().map(|o| o.letter).collect();
        if prompt.viewspatial_scoring {
            return extract_viewspatial(text, &valid);
        }
        let opts: Vec<(char, String)> = s.options.iter().map(|o| (o.letter, o.text.clone())).collect();
        return extract_letter(text, &opts);
    }
    match s.answer_style {
        AnswerStyle::YesNo => extract_yes_no(text),
        AnswerStyle::Number => extract_number(text),
        AnswerStyle::Word if s.gold_direction.is_some() => extract_direction(text),
        _ => Extraction::unparsed(),
    }
}

/// Judges `ex` against `s`'s gold answer.
pub fn judge(s: &Sample, ex: &Extraction) -> Verdict {
    let letter = ex.answer.clone().filter(|a| a.len() == 1 && !s.options.is_empty());
    let named = (ex.rule == ExtractRule::Direction).then(|| ex.answer.as_deref().and_then(parse_option)).flatten();
    let predicted_direction = letter.as_ref().and_then(|l| s.option(l.chars().next()?)).and_then(|o| o.direction).or(named);
    let correct = match (&ex.answer, s.gold_letter) {
        (None, _) => Some(false),
        // A direction answered in words is right when it is the gold direction.
        (Some(_), _) if named.is_some() => Some(named == s.gold_direction),
        (Some(a), Some(g)) if !s.options.is_empty() => Some(a.starts_with(g)),
        (Some(a), _) => s.gold_text.as_ref().map(|g| g.trim().eq_ignore_ascii_case(a)),
    };
    let error_kind = match correct {
        Some(true) => None,
        _ if ex.answer.is_none() => Some(ErrorKind::Unparsed),
        _ => Some(classify(s.gold_direction, predicted_direction)).filter(|k| *k != ErrorKind::Correct),
    };
    Verdict { predicted: letter.or(ex.answer.clone()), predicted_direction, correct, error_kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample::new("1", "t");
        s.set_options(["left", "right", "front"]);
        s.set_gold_letter('B');
        s
    }

    fn scored(label: &str) -> Extraction {
        Extraction { answer: Some(label.into()), rule: ExtractRule::Scored }
    }

    #[test]
    fn letters_directions_and_error_kinds() {
        let s = sample();
        let right = judge(&s, &scored("B"));
        assert_eq!((right.correct, right.error_kind, right.predicted.as_deref()), (Some(true), None, Some("B")));
        let flip = judge(&s, &scored("A"));
        assert_eq!((flip.correct, flip.error_kind), (Some(false), Some(ErrorKind::HorizontalFlip)));
        assert_eq!(flip.predicted_direction, parse_option("left"));
        let none = judge(&s, &Extraction::unparsed());
        assert_eq!((none.correct, none.error_kind, none.predicted), (Some(false), Some(ErrorKind::Unparsed), None));
    }

    #[test]
    fn words_yes_no_and_directions_in_words() {
        let mut yn = Sample::new("2", "vsr");
        yn.answer_style = AnswerStyle::YesNo;
        yn.gold_text = Some("yes".into());
        assert_eq!(judge(&yn, &scored("Yes")).correct, Some(true));
        assert_eq!(judge(&yn, &scored("no")).correct, Some(false));
        let mut w = Sample::new("3", "synth");
        w.answer_style = AnswerStyle::Word;
        w.gold_direction = parse_option("front-left");
        let prompt = PromptTemplate::default_prompt();
        let v = judge(&w, &extract(&prompt, &w, "It is front-right."));
        assert_eq!((v.correct, v.error_kind), (Some(false), Some(ErrorKind::HorizontalFlip)));
        assert_eq!(judge(&w, &extract(&prompt, &w, "front-left")).correct, Some(true));
    }
}
