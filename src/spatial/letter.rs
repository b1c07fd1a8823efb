//! Which option letter a free-text answer chose, without guessing.
//!
//! Every mention of an option (a letter, or an option's text) is found with
//! its place in the output, then judged by its surroundings:
//! - a repeated option list ("A. left / B. right / ...", two or more items
//!   that match the options' own texts) is set aside: it chooses nothing;
//! - a mention that is negated ("not B", "It is not on the left") or
//!   eliminated ("Option A is incorrect") is rejected, not chosen;
//! - an explicit choice ("the answer is B", "I'd go with A") beats every
//!   other mention, the last one winning;
//! - then a letter opening the answer ("B, because ..."), then marked
//!   letters ("(B)", "**B**"), then a bare letter ending it, then an
//!   option's text named in words.
//!
//! At each step, mentions that disagree ("A or B", "(A) (B) (C)") make the
//! answer `ambiguous`; nothing found leaves it `unparsed`.

use super::extract::{re, ExtractRule, Extraction};
use regex::Regex;
use std::ops::Range;
use std::sync::OnceLock;

#[derive(Clone, Debug)]
struct Mention {
    letter: char,
    /// The letter (or option text) itself.
    at: Range<usize>,
    /// What the rule read ("the answer is (B)").
    span: Range<usize>,
}

/// Words that negate what follows them in the same clause.
const NEGATIONS: [&str; 9] = ["not", "never", "no", "neither", "nor", "cannot", "without", "except", "exclude"];

/// The clause before `at`: back to the last sentence or clause break.
fn clause_before(text: &str, at: usize) -> &str {
    let head = &text[..at];
    let start = head.rfind(['.', '!', '?', ';', ':', ',', '\n']).map(|i| i + 1).unwrap_or(0);
    &head[start..]
}

fn clause_after(text: &str, end: usize) -> &str {
    let tail = &text[end..];
    let stop = tail.find(['.', '!', '?', ';', ',', '\n']).unwrap_or(tail.len());
    &tail[..stop]
}

/// Negated ("not (C)") or eliminated ("A is incorrect", "B can be ruled out").
fn rejected(text: &str, m: &Range<usize>) -> bool {
    static ELIMINATED: OnceLock<Regex> = OnceLock::new();
    let before: Vec<String> = clause_before(text, m.start)
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let negated = before.iter().rev().take(4).any(|w| NEGATIONS.contains(&w.as_str()) || w.ends_with("n't"));
    let eliminated = re(
        &ELIMINATED,
        r"(?i)^[\s)*]*(?:option\s+)?(?:is|are|was|would be|seems|looks|can be|must be|should be)?\s*(?:definitely\s+|clearly\s+|also\s+|obviously\s+)?(?:wrong|incorrect|not\b|false|ruled out|eliminated|excluded|impossible|unlikely)",
    );
    negated || eliminated.is_match(clause_after(text, m.end))
}

/// Lines that repeat the options ("A. left"), when two or more do.
fn option_list_lines(text: &str, options: &[(char, String)]) -> Vec<Range<usize>> {
    static ITEM: OnceLock<Regex> = OnceLock::new();
    let item = re(&ITEM, r"(?m)^[ \t]*(?:\(([A-Z])\)|([A-Z])[.):])[ \t]*(.+?)[ \t]*$");
    let lines: Vec<Range<usize>> = item
        .captures_iter(text)
        .filter(|c| {
            let letter = c.get(1).or(c.get(2)).and_then(|m| m.as_str().chars().next());
            let rest = super::extract::words_of(&c[3]);
            options.iter().any(|(l, t)| Some(*l) == letter && !rest.is_empty() && super::extract::words_of(t) == rest)
        })
        .map(|c| c.get(0).expect("whole match").range())
        .collect();
    if lines.len() >= 2 {
        lines
    } else {
        Vec::new()
    }
}

/// The one letter all `mentions` agree on; `Err` when they disagree, `Ok(None)` when there are none.
fn agreed(mentions: &[Mention]) -> Result<Option<&Mention>, ()> {
    match mentions.first() {
        None => Ok(None),
        Some(first) if mentions.iter().all(|m| m.letter == first.letter) => Ok(mentions.last()),
        Some(_) => Err(()),
    }
}

fn chosen(m: &Mention, rule: ExtractRule) -> Extraction {
    Extraction { answer: Some(m.letter.to_string()), rule, span: Some(m.span.clone()) }
}

fn ambiguous(mentions: &[Mention]) -> Extraction {
    let span = mentions.iter().map(|m| m.span.start).min().unwrap_or(0)..mentions.iter().map(|m| m.span.end).max().unwrap_or(0);
    Extraction { answer: None, rule: ExtractRule::Ambiguous, span: Some(span) }
}

/// Words after a capital letter that make it prose ("A dog", "I think"),
/// unless they join letters or judge them ("A or B", "A is right").
fn is_prose(text: &str, end: usize) -> bool {
    const JOINS: [&str; 18] = [
        "or", "and", "nor", "vs", "versus", "is", "was", "would", "seems", "looks", "should", "could", "might", "because", "since", "as",
        "then", "so",
    ];
    let next: String = text[end..].chars().skip_while(|c| *c == ' ').take_while(|c| c.is_alphabetic()).collect();
    text[end..].starts_with(' ') && next.len() >= 2 && next.chars().all(|c| c.is_lowercase()) && !JOINS.contains(&next.as_str())
}

/// Lowercase words with their byte ranges; a hyphen stays inside a word
/// ("front-left" is one word, so it never names "left").
fn tokens(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        let inside = c.is_alphanumeric() || c == '-';
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let w = text[s..i].trim_matches('-');
                if !w.is_empty() {
                    let lead = text[s..i].len() - text[s..i].trim_start_matches('-').len();
                    out.push((w.to_lowercase(), s + lead..s + lead + w.len()));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

pub fn extract_letter(output: &str, options: &[(char, String)]) -> Extraction {
    static DECLARED: OnceLock<Regex> = OnceLock::new();
    static CHOICE: OnceLock<Regex> = OnceLock::new();
    static OR_NEXT: OnceLock<Regex> = OnceLock::new();
    static LEADING: OnceLock<Regex> = OnceLock::new();
    static MARKED: OnceLock<Regex> = OnceLock::new();
    static BARE: OnceLock<Regex> = OnceLock::new();
    let text = output;
    let valid: Vec<char> = options.iter().map(|o| o.0).collect();
    let listed = option_list_lines(text, options);
    let usable = |r: &Range<usize>| !listed.iter().any(|l| l.start <= r.start && r.end <= l.end) && !rejected(text, r);
    let valid_at = |c: &regex::Captures, g: usize| {
        c.get(g).and_then(|m| Some((m.as_str().chars().next()?, m.range()))).filter(|(l, _)| valid.contains(l))
    };
    let collect = |re: &Regex, groups: &[usize]| -> Vec<Mention> {
        re.captures_iter(text)
            .filter_map(|c| {
                let (letter, at) = groups.iter().find_map(|&g| valid_at(&c, g))?;
                Some(Mention { letter, at, span: c.get(0).expect("whole match").range() })
            })
            .filter(|m| usable(&m.at))
            .collect()
    };

    // 1. An explicit choice; the last one wins ("the answer is A. Wait, no: the answer is C").
    let letter = r"\s*[:\-]?\s*(?:\*\*)?\(?([A-Z])\)?(?:\*\*)?(?:\W|$)";
    let declared_re = re(&DECLARED, &format!(r"(?:[Aa]nswer|ANSWER|[Oo]ption|[Cc]hoice)(?:\s+(?:is|would be|should be))?{letter}"));
    let choice_re = re(
        &CHOICE,
        &format!(
            r"(?i:\bI(?:'d|\s+would|\s+will|'ll)?\s+(?:pick|choose|select|go\s+with|say)|\bmy\s+(?:final\s+)?(?:answer|choice|pick)\s+is|\bfinal\s+answer)(?:\s+(?i:option))?{letter}"
        ),
    );
    let mut declared = collect(declared_re, &[1]);
    declared.extend(collect(choice_re, &[1]));
    declared.sort_by_key(|m| m.at.start);
    if let Some(last) = declared.last() {
        // "the answer is A or B" declares nothing.
        let or_next = re(&OR_NEXT, r"^\)?(?:\*\*)?\s+or\s+\(?(?:\*\*)?([A-Z])\b");
        if let Some(other) = or_next.captures(&text[last.at.end..]).and_then(|c| c.get(1)) {
            let end = last.at.end + other.end();
            return Extraction { answer: None, rule: ExtractRule::Ambiguous, span: Some(last.span.start..end) };
        }
        return chosen(last, ExtractRule::Declared);
    }

    // 2. A letter opening the answer: "B.", "B, because A would mean left", "(B): ...".
    let leading = re(&LEADING, r"^\s*(?:\*\*)?(?:\(([A-Z])\)|([A-Z]))(?:\*\*)?(?:[.,:]|\s+because\b|\s+since\b|\s*-\s|\)(?:\s|$))");
    if let Some(m) = collect(leading, &[1, 2]).first() {
        return chosen(m, ExtractRule::Marked);
    }

    // 3. Marked letters: "(B)", "**B**", "B." or "B)" at a line start; they must agree.
    let marked = collect(re(&MARKED, r"(?m)(?:\(([A-Z])\)|\*\*([A-Z])\*\*|^\s*([A-Z])[.):](?:\s|$))"), &[1, 2, 3]);
    match agreed(&marked) {
        Ok(Some(m)) => return chosen(m, ExtractRule::Marked),
        Err(()) => return ambiguous(&marked),
        Ok(None) => {}
    }

    // 4. Bare letters (not "A dog"): they must agree, and one must end the answer.
    let bare: Vec<Mention> = collect(re(&BARE, r"\b([A-Z])\b"), &[1]).into_iter().filter(|m| !is_prose(text, m.at.end)).collect();
    match agreed(&bare) {
        Err(()) => return ambiguous(&bare),
        Ok(Some(m)) if text[m.at.end..].trim_matches(|c: char| c.is_whitespace() || ".!)*".contains(c)).is_empty() => {
            return chosen(m, ExtractRule::Trailing)
        }
        _ => {}
    }

    // 5. Options named by their text; "front-left" does not name "left".
    let words = tokens(text);
    let mut named: Vec<Mention> = Vec::new();
    for (l, t) in options {
        let phrase: Vec<String> = tokens(t).into_iter().map(|(w, _)| w).collect();
        if phrase.is_empty() || phrase.len() > words.len() {
            continue;
        }
        for window in words.windows(phrase.len()) {
            if window.iter().zip(&phrase).all(|((w, _), p)| w == p) {
                let at = window[0].1.start..window[window.len() - 1].1.end;
                if usable(&at) {
                    named.push(Mention { letter: *l, at: at.clone(), span: at });
                }
            }
        }
    }
    named.sort_by_key(|m| m.at.start);
    match agreed(&named) {
        Ok(Some(m)) => chosen(m, ExtractRule::OptionText),
        Err(()) => ambiguous(&named),
        Ok(None) => Extraction::unparsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Vec<(char, String)> {
        vec![('A', "left".into()), ('B', "right".into()), ('C', "front-left".into()), ('D', "back".into())]
    }

    fn read(s: &str) -> (Option<String>, ExtractRule) {
        let e = extract_letter(s, &opts());
        (e.answer, e.rule)
    }

    #[test]
    fn formats_traps_and_provenance() {
        assert_eq!(read("The correct answer is (B)"), (Some("B".into()), ExtractRule::Declared));
        assert_eq!(read("Based on the image, A"), (Some("A".into()), ExtractRule::Trailing));
        assert_eq!(read("B."), (Some("B".into()), ExtractRule::Marked));
        assert_eq!(read("**C**"), (Some("C".into()), ExtractRule::Marked));
        assert_eq!(read("B"), (Some("B".into()), ExtractRule::Trailing));
        assert_eq!(read("Answer: D"), (Some("D".into()), ExtractRule::Declared));
        assert_eq!(read("The answer is **A**."), (Some("A".into()), ExtractRule::Declared));
        assert_eq!(read("The answer is A. Wait, no: the answer is (C)."), (Some("C".into()), ExtractRule::Declared));
        assert_eq!(read("The answer is (E)").0, None);
        assert_eq!(read("A dog sits left of a car and right of a tree").0, None, "two options named: no guess");
        assert_eq!(read("It is on the right."), (Some("B".into()), ExtractRule::OptionText));
        assert_eq!(read("front-left"), (Some("C".into()), ExtractRule::OptionText));
        assert_eq!(read("I am not sure."), (None, ExtractRule::Unparsed));
        assert_eq!(read(""), (None, ExtractRule::Unparsed));
    }

    /// Cases once read wrongly.
    #[test]
    fn never_guesses_negation_elimination_lists_and_final_choices() {
        assert_eq!(read("A or B"), (None, ExtractRule::Ambiguous));
        assert_eq!(read("(A) (B) (C)"), (None, ExtractRule::Ambiguous));
        assert_eq!(read("Not B.").0, None);
        assert_eq!(read("It is not on the left.").0, None);
        assert_eq!(read("A. left\nB. right\nC. front-left\nD. back\nI pick A").0.as_deref(), Some("A"));
        assert_eq!(read("Option A is incorrect because it names the wrong side.").0, None);
        assert_eq!(read("It's definitely not (C). I'd go with A"), (Some("A".into()), ExtractRule::Declared));
        assert_eq!(read("B, because A would mean left"), (Some("B".into()), ExtractRule::Marked));
        assert_eq!(read("The answer is A or B."), (None, ExtractRule::Ambiguous));
        assert_eq!(read("It is not on the left, it is on the right.").0.as_deref(), Some("B"));
        assert_eq!(read("A is wrong. B is wrong. The answer is D."), (Some("D".into()), ExtractRule::Declared));
    }

    #[test]
    fn spans_point_at_what_was_read() {
        let text = "Let me think. The answer is (B).";
        let e = extract_letter(text, &opts());
        assert_eq!(&text[e.span.unwrap()], "answer is (B).");
        let text = "Clearly on the right";
        assert_eq!(&text[extract_letter(text, &opts()).span.unwrap()], "right");
    }
}
