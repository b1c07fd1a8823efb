//! The one judge: from an extraction (what the model's answer was read as)
//! to the prediction, whether it is right, and the error kind. Eval records,
//! live answers and probes are all judged here.

use super::PromptTemplate;
use crate::data::{AnswerStyle, Sample};
use crate::spatial::extract::{
    extract_direction, extract_letter, extract_number, extract_relation, extract_viewspatial, extract_yes_no, words_of, ExtractRule,
    Extraction, VSR_RELATIONS,
};
use crate::spatial::{classify, parse_option, parse_relation, Direction, ErrorKind, Verdict};

/// What one answer to one sample was read as, and its verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The chosen option letter, or the extracted answer when the sample has no options.
    pub predicted: Option<String>,
    /// The direction the answer names: the chosen option's, or the one named in words.
    pub predicted_direction: Option<Direction>,
    pub verdict: Verdict,
}

/// Reads `text` with the rule that fits the sample and the prompt: option
/// letters (ViewSpatial's official rule under its template), yes/no, a
/// number, or a direction in words.
pub fn extract(prompt: &PromptTemplate, s: &Sample, text: &str) -> Extraction {
    // An answer in `<answer>...</answer>` (the reasoning format GRPO recipes
    // ask for) is read there, not in the thinking before it.
    if let Some((start, inner)) = answer_tag(text) {
        let mut ex = extract(prompt, s, inner);
        ex.span = ex.span.map(|r| start + r.start..start + r.end);
        return ex;
    }
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
        // A relation phrase (VSR's vocabulary, and the gold phrase itself).
        AnswerStyle::Relation => {
            let gold = s.gold_text.as_deref().unwrap_or_default();
            let vocabulary: Vec<&str> = VSR_RELATIONS.iter().copied().chain([gold]).collect();
            extract_relation(text, &vocabulary)
        }
        _ => Extraction::unparsed(),
    }
}

/// The content of the last `<answer>...</answer>` in `text` (any case) and where it starts.
fn answer_tag(text: &str) -> Option<(usize, &str)> {
    let lower = text.to_ascii_lowercase();
    let open = lower.rfind("<answer>")?;
    let start = open + "<answer>".len();
    let end = start + lower[start..].find("</answer>")?;
    Some((start, &text[start..end]))
}

/// The same words, ignoring case, spacing and punctuation ("On top of" = "on top of").
fn same_words(a: &str, b: &str) -> bool {
    words_of(a) == words_of(b)
}

/// Judges `ex` against `s`'s gold answer.
pub fn judge(s: &Sample, ex: &Extraction) -> Judgement {
    let letter = ex.answer.clone().filter(|a| a.len() == 1 && !s.options.is_empty());
    let named = (ex.rule == ExtractRule::Direction).then(|| ex.answer.as_deref().and_then(parse_option)).flatten();
    // A relation phrase names a direction too ("behind"), for the error kind; it is judged by its words.
    let relation = (ex.rule == ExtractRule::Relation).then(|| ex.answer.as_deref().and_then(parse_relation)).flatten();
    let predicted_direction = letter.as_ref().and_then(|l| s.option(l.chars().next()?)).and_then(|o| o.direction).or(named).or(relation);
    let correct = match (&ex.answer, s.gold_letter) {
        (None, _) => Some(false),
        // A direction answered in words is right when it is the gold direction.
        (Some(_), _) if named.is_some() => Some(named == s.gold_direction),
        (Some(a), Some(g)) if !s.options.is_empty() => Some(a.starts_with(g)),
        (Some(a), _) => s.gold_text.as_ref().map(|g| same_words(g, a)),
    };
    let verdict = match correct {
        _ if ex.answer.is_none() => Verdict::Unparsed,
        Some(true) => Verdict::Correct,
        // No gold to judge against.
        None => Verdict::Unjudged,
        // An answer was read: without two different directions to compare
        // it is `other`, never `unparsed` (that is for answers not found at all).
        Some(false) => match classify(s.gold_direction, predicted_direction) {
            ErrorKind::Correct | ErrorKind::Unparsed => Verdict::Wrong(ErrorKind::Other),
            kind => Verdict::Wrong(kind),
        },
    };
    Judgement { predicted: letter.or(ex.answer.clone()), predicted_direction, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample::new("1", "t");
        s.set_options(["left", "right", "front"]).unwrap();
        s.set_gold_letter('B');
        s
    }

    fn scored(label: &str) -> Extraction {
        Extraction::scored(label)
    }

    #[test]
    fn letters_directions_and_error_kinds() {
        let s = sample();
        let right = judge(&s, &scored("B"));
        assert_eq!((right.verdict, right.predicted.as_deref()), (Verdict::Correct, Some("B")));
        let flip = judge(&s, &scored("A"));
        assert_eq!(flip.verdict, Verdict::Wrong(ErrorKind::HorizontalFlip));
        assert_eq!(flip.predicted_direction, parse_option("left"));
        let none = judge(&s, &Extraction::unparsed());
        assert_eq!((none.verdict, none.predicted), (Verdict::Unparsed, None));
        // Two options naming the same direction: the other letter is wrong, not correct.
        let mut twin = Sample::new("1b", "t");
        twin.set_options(["left", "to the left"]).unwrap();
        twin.set_gold_letter('A');
        assert_eq!(judge(&twin, &scored("B")).verdict, Verdict::Wrong(ErrorKind::Other));
        // Without a gold there is no verdict.
        let mut typed = Sample::new("1c", "typed");
        typed.set_options(["left", "right"]).unwrap();
        assert_eq!(judge(&typed, &scored("A")).verdict, Verdict::Unjudged);
    }

    #[test]
    fn words_yes_no_and_directions_in_words() {
        let mut yn = Sample::new("2", "vsr");
        yn.answer_style = AnswerStyle::YesNo;
        yn.gold_text = Some("yes".into());
        assert_eq!(judge(&yn, &scored("Yes")).verdict, Verdict::Correct);
        assert_eq!(judge(&yn, &scored("no")).verdict, Verdict::Wrong(ErrorKind::Other));
        let mut w = Sample::new("3", "synth");
        w.answer_style = AnswerStyle::Word;
        w.gold_direction = parse_option("front-left");
        let prompt = PromptTemplate::default_prompt();
        let v = judge(&w, &extract(&prompt, &w, "It is front-right."));
        assert_eq!(v.verdict, Verdict::Wrong(ErrorKind::HorizontalFlip));
        assert_eq!(judge(&w, &extract(&prompt, &w, "front-left")).verdict, Verdict::Correct);
        // A relation phrase (AdaptVis's VSR prompts).
        let mut r = Sample::new("4", "adaptvis");
        r.answer_style = AnswerStyle::Relation;
        r.gold_text = Some("on top of".into());
        r.gold_direction = parse_relation("on top of");
        let v = judge(&r, &extract(&prompt, &r, "The cat is on top of the car."));
        assert_eq!((v.verdict, v.predicted.as_deref()), (Verdict::Correct, Some("on top of")));
        let v = judge(&r, &extract(&prompt, &r, "under"));
        assert_eq!(v.verdict, Verdict::Wrong(ErrorKind::VerticalFlip), "under is the vertical flip of on top of");
        let v = judge(&r, &extract(&prompt, &r, "touching"));
        assert_eq!(v.verdict, Verdict::Wrong(ErrorKind::Other));
        assert_eq!(judge(&r, &extract(&prompt, &r, "no idea")).verdict, Verdict::Unparsed);
    }
}
