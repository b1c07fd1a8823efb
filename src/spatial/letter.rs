//! Which option letter a free-text answer chose, without guessing.
//!
//! The text is read in one pass of bounded look-around, so reading is
//! linear in its length. First it is NFKC-normalised ("Ｃ" reads as "C"),
//! then cut into statements at self-corrections ("wait", "no,", "actually",
//! "on second thought", "I mean", "hold on", "scratch that", "correction",
//! after a stop or a comma or at the start), and each statement is read by
//! the rules below. A later statement that chooses replaces an earlier one;
//! a later statement that only names an option's text while an earlier one
//! chose another letter makes the answer `ambiguous`. A retracted answer is
//! never taken.
//!
//! Within a statement every mention of an option (a letter, or an option's
//! text) is found with its place, then judged by its surroundings:
//! - a repeated option list ("A. left / B. right / ...", two or more items
//!   that match the options' own texts) chooses nothing;
//! - a mention that is negated ("not B", "It is not on the left"; "but"
//!   ends a negation: "Not (A) but (B)") or eliminated ("Option A is
//!   incorrect", "Both A and B are wrong") is rejected.
//!
//! The rules, first match wins:
//!
//! | rule | reads | examples |
//! |------|-------|----------|
//! | declared | an explicit choice; the last one wins, "A or B" is ambiguous | "the answer is (B)", "Answer: c", "\boxed{C}", "I'd go with A" |
//! | marked (leading) | a letter opening the answer | "B.", "B, because ...", "(b): ..." |
//! | marked | marked letters, which must agree | "(B)", "(c)", "**B**", "B)" at a line start |
//! | trailing | bare capitals, which must agree, one ending the answer | "Based on the image, A" |
//! | option text | options named by their text, which must agree | "It is on the right." |
//!
//! A bare lower-case letter is never read ("a" is an article). Mentions that
//! disagree at a step make the answer `ambiguous`; nothing found leaves it
//! `unparsed`.

use super::extract::{re, ExtractRule, Extraction};
use super::normalize::Normalized;
use regex::Regex;
use std::ops::Range;
use std::sync::OnceLock;

/// How far (bytes) a rule looks around a mention for negations,
/// eliminations and prose: bounded, so reading stays linear.
const LOOK: usize = 96;

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
/// Words after which a negation no longer holds ("not A but B").
const CONTRASTS: [&str; 4] = ["but", "rather", "instead", "however"];

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// At most `LOOK` bytes of the clause before `at`, back to a sentence or clause break.
fn clause_before(text: &str, at: usize) -> &str {
    let head = &text[floor_boundary(text, at.saturating_sub(LOOK))..at];
    let start = head.rfind(['.', '!', '?', ';', ':', ',', '\n']).map(|i| i + 1).unwrap_or(0);
    &head[start..]
}

/// At most `LOOK` bytes of the sentence after `end`.
fn sentence_after(text: &str, end: usize) -> &str {
    let tail = &text[end..floor_boundary(text, (end + LOOK).min(text.len()))];
    let stop = tail.find(['.', '!', '?', ';', '\n']).unwrap_or(tail.len());
    &tail[..stop]
}

/// Negated ("not (C)") or eliminated ("A is incorrect", "A and B are wrong").
fn rejected(text: &str, m: &Range<usize>) -> bool {
    static ELIMINATED: OnceLock<Regex> = OnceLock::new();
    // The last four words before the mention, back to a contrast ("not A but B").
    let words = clause_before(text, m.start).rsplit(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty());
    let negated = words.take_while(|w| !CONTRASTS.iter().any(|c| w.eq_ignore_ascii_case(c))).take(4).any(|w| {
        NEGATIONS.iter().any(|n| w.eq_ignore_ascii_case(n))
            || w.len().checked_sub(3).and_then(|i| w.get(i..)).is_some_and(|e| e.eq_ignore_ascii_case("n't"))
    });
    if negated {
        return true;
    }
    // Other letters joined to this one ("A and B", "A, B or C") share its judgement.
    let eliminated = re(
        &ELIMINATED,
        r"^(?:(?:\s*,\s*\(?[A-Z]\)?\b)*\s*,?\s*(?:and|or|nor|&)\s*\(?[A-Z]\)?\b)?(?i:[\s)*]*(?:option\s+)?(?:is|are|was|were|would be|seems|look|looks|can be|must be|should be)?\s*(?:definitely\s+|clearly\s+|also\s+|both\s+|obviously\s+)?(?:wrong|incorrect|not\b|false|ruled out|eliminated|excluded|impossible|unlikely))",
    );
    eliminated.is_match(sentence_after(text, m.end))
}

/// Lines that repeat the options ("A. left"), when two or more do, in order.
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

/// Whether `r` lies inside one of the (sorted, disjoint) `lines`.
fn inside(lines: &[Range<usize>], r: &Range<usize>) -> bool {
    let after = lines.partition_point(|l| l.start <= r.start);
    after > 0 && r.end <= lines[after - 1].end
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
    let after = &text[end..floor_boundary(text, (end + LOOK).min(text.len()))];
    let next: String = after.chars().skip_while(|c| *c == ' ').take_while(|c| c.is_alphabetic()).collect();
    after.starts_with(' ') && next.len() >= 2 && next.chars().all(|c| c.is_lowercase()) && !JOINS.contains(&next.as_str())
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
    let normalized = Normalized::nfkc(output);
    let mut read = read_with_corrections(&normalized.text, options);
    read.span = read.span.map(|s| normalized.original_span(s));
    read
}

/// Self-corrections, each a run of marker words ("Wait, no, "), where a
/// statement starts: at the start, or after a stop, a comma or a dash.
fn corrections(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    static MARKER: OnceLock<Regex> = OnceLock::new();
    let marker = re(
        &MARKER,
        r"(?i)(?:^|[.,;:!?…\n\-—(])\s*((?:(?:(?:wait|hold on|actually|on second thought|on reflection|i mean|scratch that|correction|no\s+wait)\b|no\s*[,!;:.])[\s,;:.!…\-—]*)+)",
    );
    marker.captures_iter(text).map(|c| c.get(1).expect("marker").range())
}

/// Reads each statement between self-corrections, later ones revising earlier ones.
fn read_with_corrections(text: &str, options: &[(char, String)]) -> Extraction {
    let mut reading = Extraction::unparsed();
    let mut start = 0;
    let ends = corrections(text).map(|m| (m.start, m.end)).chain([(text.len(), text.len())]);
    for (stop, next) in ends {
        let mut later = read_statement(&text[start..stop], options);
        later.span = later.span.map(|s| start + s.start..start + s.end);
        reading = revise(reading, later);
        start = next;
    }
    reading
}

/// What a later statement does to the reading so far: a choice replaces it;
/// an option's text against another chosen letter makes it ambiguous.
fn revise(earlier: Extraction, later: Extraction) -> Extraction {
    let chose_letter = matches!(earlier.rule, ExtractRule::Declared | ExtractRule::Marked | ExtractRule::Trailing);
    match later.rule {
        ExtractRule::Unparsed => earlier,
        ExtractRule::OptionText if chose_letter && earlier.answer == later.answer => earlier,
        ExtractRule::OptionText if chose_letter => {
            let span = match (earlier.span, later.span) {
                (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
                (a, b) => a.or(b),
            };
            Extraction { answer: None, rule: ExtractRule::Ambiguous, span }
        }
        _ => later,
    }
}

/// One statement, read by the rules of the table above.
fn read_statement(text: &str, options: &[(char, String)]) -> Extraction {
    static DECLARED: OnceLock<Regex> = OnceLock::new();
    static CHOICE: OnceLock<Regex> = OnceLock::new();
    static BOXED: OnceLock<Regex> = OnceLock::new();
    static OR_NEXT: OnceLock<Regex> = OnceLock::new();
    static LEADING: OnceLock<Regex> = OnceLock::new();
    static MARKED: OnceLock<Regex> = OnceLock::new();
    static BARE: OnceLock<Regex> = OnceLock::new();
    let valid: Vec<char> = options.iter().map(|o| o.0).collect();
    let listed = option_list_lines(text, options);
    let usable = |r: &Range<usize>| !inside(&listed, r) && !rejected(text, r);
    let collect = |re: &Regex, groups: &[usize]| -> Vec<Mention> {
        re.captures_iter(text)
            .filter_map(|c| {
                let (letter, at) = groups.iter().find_map(|&g| {
                    let m = c.get(g)?;
                    Some((m.as_str().chars().next()?.to_ascii_uppercase(), m.range()))
                })?;
                valid.contains(&letter).then(|| Mention { letter, at, span: c.get(0).expect("whole match").range() })
            })
            .filter(|m| usable(&m.at))
            .collect()
    };

    // 1. An explicit choice; the last one wins ("the answer is A. The answer is C").
    // A lower-case letter counts marked, or where nothing follows it ("answer: c", not "answer is a car").
    let letter = r"\s*[:\-]?\s*(?:\*\*)?(?:\(([A-Za-z])\)(?:\*\*)?(?:\W|$)|([A-Z])(?:\*\*)?(?:\W|$)|([a-z])(?:\*\*)?(?:[.,;!?\n]|$))";
    let declared_re = re(&DECLARED, &format!(r"(?:[Aa]nswer|ANSWER|[Oo]ption|[Cc]hoice)(?:\s+(?:is|would be|should be))?{letter}"));
    let choice_re = re(
        &CHOICE,
        &format!(
            r"(?i:\bI(?:'d|\s+would|\s+will|'ll)?\s+(?:pick|choose|select|go\s+with|say)|\bmy\s+(?:final\s+)?(?:answer|choice|pick)\s+is|\bfinal\s+answer)(?:\s+(?i:option))?{letter}"
        ),
    );
    let boxed_re = re(&BOXED, r"\\boxed\s*\{\s*(?:\\text(?:bf)?\s*\{\s*)?\(?([A-Za-z])\)?(?:[\s.:)][^{}]*)?\}");
    let mut declared = collect(declared_re, &[1, 2, 3]);
    declared.extend(collect(choice_re, &[1, 2, 3]));
    declared.extend(collect(boxed_re, &[1]));
    declared.sort_by_key(|m| m.at.start);
    if let Some(last) = declared.last() {
        // "the answer is A or B" declares nothing.
        let or_next = re(&OR_NEXT, r"^\)?(?:\*\*)?\s+or\s+\(?(?:\*\*)?([A-Z])\b");
        let after = &text[last.at.end..floor_boundary(text, (last.at.end + LOOK).min(text.len()))];
        if let Some(other) = or_next.captures(after).and_then(|c| c.get(1)) {
            let end = last.at.end + other.end();
            return Extraction { answer: None, rule: ExtractRule::Ambiguous, span: Some(last.span.start..end) };
        }
        return chosen(last, ExtractRule::Declared);
    }

    // 2. A letter opening the answer: "B.", "B, because A would mean left", "(b): ...".
    let leading = re(&LEADING, r"^\s*(?:\*\*)?(?:\(([A-Za-z])\)|([A-Z]))(?:\*\*)?(?:[.,:]|\s+because\b|\s+since\b|\s*-\s|\)(?:\s|$))");
    if let Some(m) = collect(leading, &[1, 2]).first() {
        return chosen(m, ExtractRule::Marked);
    }

    // 3. Marked letters: "(B)", "(b)", "**B**", "B." or "B)" at a line start; they must agree.
    let marked = collect(re(&MARKED, r"(?m)(?:\(([A-Za-z])\)|\*\*([A-Za-z])\*\*|^\s*([A-Z])[.):](?:\s|$))"), &[1, 2, 3]);
    match agreed(&marked) {
        Ok(Some(m)) => return chosen(m, ExtractRule::Marked),
        Err(()) => return ambiguous(&marked),
        Ok(None) => {}
    }

    // 4. Bare capitals (not "A dog"): they must agree, and one must end the answer.
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
    fn a_self_correction_never_takes_the_retracted_answer() {
        assert_eq!(read("Answer: A. Wait, no, B.").0.as_deref(), Some("B"));
        assert_eq!(read("I'd say A... actually D").0.as_deref(), Some("D"));
        assert_eq!(read("The answer is B... no wait, it's definitely A").0.as_deref(), Some("A"));
        assert_eq!(read("A. On second thought, (C)."), (Some("C".into()), ExtractRule::Marked));
        assert_eq!(read("The answer is A. I mean B").0.as_deref(), Some("B"));
        assert_eq!(read("The answer is A. Wait, maybe B or C.").1, ExtractRule::Ambiguous);
        // Words after a correction that only name another option's text do not choose over a letter.
        assert_eq!(read("Answer: B. Actually, the cup is on the left.").1, ExtractRule::Ambiguous);
        assert_eq!(read("It is on the left... wait, on the right.").0.as_deref(), Some("B"));
        // A correction that names nothing leaves the answer; "not actually" is no correction.
        assert_eq!(read("The answer is C. Wait, let me check. Yes.").0.as_deref(), Some("C"));
        assert_eq!(read("It's not actually A").0, None);
        assert_eq!(read("No, it is on the right").0.as_deref(), Some("B"));
    }

    #[test]
    fn obvious_answers_in_other_forms_are_read() {
        assert_eq!(read("Ａ").0.as_deref(), Some("A"));
        let text = "The correct option is Ｃ";
        let e = extract_letter(text, &opts());
        assert_eq!((e.answer.as_deref(), e.rule), (Some("C"), ExtractRule::Declared));
        assert_eq!(&text[e.span.unwrap()], "option is Ｃ", "the span is of the text as written");
        assert_eq!(read("(b)").0.as_deref(), Some("B"));
        assert_eq!(read("answer: c"), (Some("C".into()), ExtractRule::Declared));
        assert_eq!(read("I think it's (c)"), (Some("C".into()), ExtractRule::Marked));
        assert_eq!(read("\\boxed{C}"), (Some("C".into()), ExtractRule::Declared));
        assert_eq!(read("So the final result is $\\boxed{\\text{D}}$.").0.as_deref(), Some("D"));
        assert_eq!(read("Both A and B are wrong; C.").0.as_deref(), Some("C"));
        assert_eq!(read("A, B and D are wrong, so C").0.as_deref(), Some("C"));
        assert_eq!(read("Not (A) but (B)").0.as_deref(), Some("B"));
        // A bare lower-case letter is an article, never an answer.
        assert_eq!(read("a").0, None);
        assert_eq!(read("The answer is a car on the left"), (Some("A".into()), ExtractRule::OptionText));
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
