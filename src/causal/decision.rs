//! Where the model commits to an answer, and between which tokens.
//!
//! A model that answers with a letter decides at the prompt's last position
//! between the option letters. One that answers in words may share an
//! opening: the demo model's "front-left" and "front-right" are the same
//! three tokens before "left" or "right". The decision between an answer and
//! its mirror is then made after that opening, so it is teacher-forced onto
//! the prompt and the experiments read the position after it.

use crate::data::Sample;
use crate::engine::{Engine, PreparedPrompt};
use anyhow::{bail, Context, Result};

/// How the model answers: with the option's letter or its words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerForm {
    /// Whichever the model puts more probability on at the answer position.
    #[default]
    Auto,
    Letter,
    Words,
}

impl AnswerForm {
    /// The name on the command line (`--answer`), in run settings and in the TUI.
    pub fn name(self) -> &'static str {
        match self {
            AnswerForm::Auto => "auto",
            AnswerForm::Letter => "letter",
            AnswerForm::Words => "words",
        }
    }
}

/// A token tracked at the decision position.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The option letter, or the token's text.
    pub label: String,
    pub token: i64,
    /// The direction its option names, when it names one.
    pub direction: Option<crate::spatial::Direction>,
}

/// The prompt to run (with the shared opening appended) and what to read at its last position.
#[derive(Clone, Debug)]
pub struct Decision {
    pub prompt: PreparedPrompt,
    /// Answer tokens appended to the prompt (the contrasted answers' shared opening).
    pub opening: Vec<i64>,
    pub candidates: Vec<Candidate>,
    /// Indexes into `candidates` of the gold answer X and its horizontal mirror.
    pub contrast: Option<(usize, usize)>,
    /// Index into `candidates` of the gold answer.
    pub gold: Option<usize>,
    pub form: AnswerForm,
}

impl Decision {
    /// The decision for a prompt without a sample: the given token, or none
    /// (the experiments then read the model's own top token).
    pub fn plain(prompt: PreparedPrompt, token: Option<(i64, String)>) -> Decision {
        let candidates = token.map(|(token, label)| vec![Candidate { label, token, direction: None }]).unwrap_or_default();
        Decision { prompt, opening: Vec::new(), candidates, contrast: None, gold: None, form: AnswerForm::Auto }
    }

    pub fn tokens(&self) -> Vec<i64> {
        self.candidates.iter().map(|c| c.token).collect()
    }
}

/// What the experiments compare, in words: "front-left vs front-right,
/// by the token after the shared \"front-\"". `labels` are the candidates'
/// labels, `opening` the decoded shared opening ("" when none).
pub fn compared(form: AnswerForm, labels: &[String], opening: &str) -> String {
    let names = labels.join(" vs ");
    match (form, labels.len(), opening.is_empty()) {
        (_, 0, _) => "the model's own top token (no candidates)".into(),
        (AnswerForm::Letter, ..) => format!("the option letters {names} at the answer position"),
        (_, 1, _) => format!("the token {names}"),
        (_, _, false) => format!("{names}, by the token after the shared {opening:?}"),
        (_, _, true) => format!("{names}, by their first tokens"),
    }
}

fn common_prefix(a: &[i64], b: &[i64]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The decision for `sample` asked with `prompt`: the options' letters, or
/// their words after the opening the gold answer shares with its mirror.
pub fn for_sample(engine: &Engine, sample: &Sample, prompt: &PreparedPrompt, form: AnswerForm) -> Result<Decision> {
    if sample.options.is_empty() {
        bail!("sample {} has no options: the causal experiments contrast options (give --target-token for a free answer)", sample.id);
    }
    let tok = &engine.processor.tokenizer;
    let phrases: Vec<Vec<i64>> = sample
        .options
        .iter()
        .map(|o| tok.encode(&o.text).with_context(|| format!("sample {}: tokenising option {}", sample.id, o.letter)))
        .collect::<Result<_>>()?;
    if let Some(o) = sample.options.iter().zip(&phrases).find(|(_, p)| p.is_empty()) {
        bail!("sample {}: option {} ({:?}) has no tokens", sample.id, o.0.letter, o.0.text);
    }
    let letters: Vec<String> = sample.options.iter().map(|o| o.letter.to_string()).collect();
    let letter_ids = engine.option_token_ids(&letters)?;
    let form = match form {
        AnswerForm::Auto => {
            let lp = engine.model.last_logits(&engine.collate(&[prompt]))?.reshape([-1]).log_softmax(-1, tch::Kind::Float);
            let mass = |ids: &mut dyn Iterator<Item = i64>| {
                let mut seen: Vec<i64> = ids.collect();
                seen.sort_unstable();
                seen.dedup();
                seen.iter().map(|&i| lp.double_value(&[i]).exp()).sum::<f64>()
            };
            let words = mass(&mut phrases.iter().map(|p| p[0]));
            if mass(&mut letter_ids.iter().copied()) >= words {
                AnswerForm::Letter
            } else {
                AnswerForm::Words
            }
        }
        f => f,
    };
    let gold = sample.gold_letter.and_then(|g| sample.options.iter().position(|o| o.letter == g));
    let mirror = gold.and_then(|g| {
        let d = sample.options[g].direction?;
        sample.options.iter().position(|o| o.direction == Some(d.mirrored()) && o.letter != sample.options[g].letter)
    });
    if form == AnswerForm::Letter {
        let candidates = letters
            .iter()
            .zip(&letter_ids)
            .zip(&sample.options)
            .map(|((l, &token), o)| Candidate { label: l.clone(), token, direction: o.direction })
            .collect();
        let contrast = gold.zip(mirror);
        return Ok(Decision { prompt: prompt.clone(), opening: Vec::new(), candidates, contrast, gold, form });
    }
    // Words: the opening is what the gold answer and its mirror share (none without a mirror).
    let opening: Vec<i64> = match gold.zip(mirror) {
        Some((g, m)) => {
            let n = common_prefix(&phrases[g], &phrases[m]);
            if n >= phrases[g].len().min(phrases[m].len()) {
                bail!(
                    "sample {}: options {:?} and {:?} do not differ by a token",
                    sample.id,
                    sample.options[g].text,
                    sample.options[m].text
                );
            }
            phrases[g][..n].to_vec()
        }
        None => Vec::new(),
    };
    // Every option that continues the opening is a candidate, by its next token.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut index_of = vec![None; sample.options.len()];
    for (i, p) in phrases.iter().enumerate() {
        if p.len() > opening.len() && p[..opening.len()] == opening[..] {
            let token = p[opening.len()];
            let at = match candidates.iter().position(|c| c.token == token) {
                Some(k) => k,
                None => {
                    candidates.push(Candidate { label: sample.options[i].text.clone(), token, direction: sample.options[i].direction });
                    candidates.len() - 1
                }
            };
            index_of[i] = Some(at);
        }
    }
    let contrast = gold.zip(mirror).and_then(|(g, m)| index_of[g].zip(index_of[m]));
    let gold = gold.and_then(|g| index_of[g]);
    Ok(Decision { prompt: prompt.extended(&opening), opening, candidates, contrast, gold, form })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comparison_is_said_in_words() {
        let l = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compared(AnswerForm::Words, &l(&["front-left", "front-right"]), "front-"),
            "front-left vs front-right, by the token after the shared \"front-\""
        );
        assert_eq!(compared(AnswerForm::Letter, &l(&["A", "B"]), ""), "the option letters A vs B at the answer position");
        assert_eq!(compared(AnswerForm::Auto, &[], ""), "the model's own top token (no candidates)");
    }
}
