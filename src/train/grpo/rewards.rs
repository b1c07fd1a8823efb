//! The verifiable rewards of a completion. `accuracy` is eval's own judge
//! on the answer eval's extraction reads (one definition of correct in the
//! whole tool); `format` is whether the completion has the form the prompt
//! asks for: an answer alone, or `<think>...</think><answer>...</answer>`
//! when the template asks for those tags.

use super::config::RewardWeights;
use crate::data::Sample;
use crate::eval::judge::{extract, judge};
use crate::eval::PromptTemplate;
use crate::spatial::extract::ExtractRule;

/// Each reward of one completion, and their weighted sum.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Rewards {
    pub accuracy: f64,
    pub format: f64,
    pub total: f64,
}

/// Whether the prompt asks for `<think>` and `<answer>` tags.
pub fn wants_tags(template: &PromptTemplate) -> bool {
    template.template.contains("<answer>") && template.template.contains("<think>")
}

/// The form the prompt asks for. With tags: one `<think>...</think>` then
/// one `<answer>...</answer>` and nothing after. Without: a short answer
/// that extraction reads by an explicit rule (not `unparsed`/`ambiguous`).
pub fn format_ok(template: &PromptTemplate, sample: &Sample, completion: &str) -> bool {
    let text = completion.trim();
    if wants_tags(template) {
        let Some(rest) = text.strip_prefix("<think>") else { return false };
        let Some((think, after)) = rest.split_once("</think>") else { return false };
        let after = after.trim_start();
        let Some(inner) = after.strip_prefix("<answer>").and_then(|a| a.strip_suffix("</answer>")) else { return false };
        return !think.contains("<think>") && !inner.trim().is_empty() && !inner.contains('<');
    }
    let rule = extract(template, sample, text).rule;
    text.split_whitespace().count() <= 8 && !matches!(rule, ExtractRule::Unparsed | ExtractRule::Ambiguous)
}

pub fn score(weights: &RewardWeights, template: &PromptTemplate, sample: &Sample, completion: &str) -> Rewards {
    let judged = judge(sample, &extract(template, sample, completion));
    let accuracy = judged.verdict.is_correct() as u8 as f64;
    let format = format_ok(template, sample, completion) as u8 as f64;
    Rewards { accuracy, format, total: weights.accuracy * accuracy + weights.format * format }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample::new("q", "t");
        s.set_options(["left", "right", "front", "back"]).unwrap();
        s.set_gold_letter('B');
        s
    }

    #[test]
    fn accuracy_uses_the_judge_and_format_the_prompt() {
        let t = PromptTemplate::default_prompt();
        let w = RewardWeights { accuracy: 0.9, format: 0.1 };
        let s = sample();
        assert_eq!(score(&w, &t, &s, "B"), Rewards { accuracy: 1.0, format: 1.0, total: 1.0 });
        assert_eq!(score(&w, &t, &s, "The answer is (B)").accuracy, 1.0);
        let wrong = score(&w, &t, &s, "A");
        assert_eq!((wrong.accuracy, wrong.format), (0.0, 1.0));
        assert!((wrong.total - 0.1).abs() < 1e-12);
        // Right but unreadable by rule, or too long: no format reward; "A or B" is neither right nor well-formed.
        assert_eq!(score(&w, &t, &s, "A or B"), Rewards { accuracy: 0.0, format: 0.0, total: 0.0 });
        let long = "Looking at the image carefully I think that in the end it is B";
        assert_eq!((score(&w, &t, &s, long).accuracy, score(&w, &t, &s, long).format), (1.0, 0.0));
        // A template asking for tags wants them, in order, and nothing after.
        let tags = PromptTemplate { template: "{question}\n{choices}\nThink in <think></think>, answer in <answer></answer>.".into(), ..t };
        assert!(format_ok(&tags, &s, "<think>the cup is right of the man</think><answer>B</answer>"));
        assert!(!format_ok(&tags, &s, "<answer>B</answer>"));
        assert!(!format_ok(&tags, &s, "<think>x</think><answer>B</answer> and more"));
        assert_eq!(score(&w, &tags, &s, "<think>x</think><answer>B</answer>").accuracy, 1.0);
    }
}
