//! Prompt templates: `{question}`, `{choices}` (lettered option lines) and
//! `{instruction}` (how to answer, by answer style).

use crate::data::{AnswerStyle, Sample};
use crate::engine::ResizePolicy;
use anyhow::{bail, Context, Result};

/// The multiple-choice prompt (the `default` eval template), as probes and the CLI ask.
pub fn mcq_prompt(question: &str, sample: &Sample) -> String {
    PromptTemplate::default_prompt().render(question, sample)
}

/// The labels scored at the answer position.
pub fn answer_labels(sample: &Sample) -> Result<Vec<String>> {
    if !sample.options.is_empty() {
        return Ok(sample.options.iter().map(|o| o.letter.to_string()).collect());
    }
    match sample.answer_style {
        AnswerStyle::YesNo => Ok(vec!["Yes".into(), "No".into()]),
        _ => bail!("sample {} has no options to score (answers in words are read with --mode generate)", sample.id),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PromptTemplate {
    pub name: String,
    pub template: String,
    /// ViewSpatial's official scoring (last line, first \b[A-D]\b) instead of the general extractor.
    pub viewspatial_scoring: bool,
    pub resize: ResizePolicy,
}

impl PromptTemplate {
    /// `default`, `viewspatial` (official prompt, 280x420 images, official scoring), `lmms`, or a template file.
    pub fn parse(spec: &str) -> Result<PromptTemplate> {
        let t = |name: &str, template: &str, vs: bool, resize: ResizePolicy| PromptTemplate {
            name: name.into(),
            template: template.into(),
            viewspatial_scoring: vs,
            resize,
        };
        Ok(match spec {
            "default" => Self::default_prompt(),
            // No separator after the question: that is how the official script builds it.
            "viewspatial" => t(
                "viewspatial",
                "{question}{choices}\nReply only to the corresponding option.\nAnswer:",
                true,
                ResizePolicy::Exact { width: 280, height: 420 },
            ),
            "lmms" => t(
                "lmms",
                "Question: {question}\nChoices: {choices}\nReply only to the corresponding option.\nAnswer:",
                false,
                ResizePolicy::Auto,
            ),
            path => {
                let text = crate::fsutil::read_text(std::path::Path::new(path))
                    .with_context(|| format!("--prompt `{path}` is not default, viewspatial, lmms or a readable file"))?;
                if !text.contains("{question}") {
                    bail!("{path}: a prompt template needs {{question}}");
                }
                t(path, text.trim_end_matches('\n'), false, ResizePolicy::Auto)
            }
        })
    }

    /// The lmms-eval style multiple-choice prompt, also used by probes and the CLI.
    pub fn default_prompt() -> PromptTemplate {
        PromptTemplate {
            name: "default".into(),
            template: "{question}\n{choices}\n{instruction}".into(),
            viewspatial_scoring: false,
            resize: ResizePolicy::Auto,
        }
    }

    pub fn render(&self, question: &str, sample: &Sample) -> String {
        let (choices, instruction) = match (sample.options.is_empty(), sample.answer_style) {
            (false, _) => (sample.choices_text(), "Answer with the option's letter from the given choices directly."),
            (true, AnswerStyle::YesNo) => ("yes or no".to_string(), "Answer with yes or no."),
            (true, AnswerStyle::Word | AnswerStyle::Relation) => (String::new(), "Answer the question using a single word or phrase."),
            (true, _) => (String::new(), "Answer with a single number."),
        };
        // Without lettered options the instruction says it all: drop the choices line.
        let template = if sample.options.is_empty() { self.template.replace("{choices}\n", "") } else { self.template.clone() };
        template.replace("{question}", question).replace("{choices}", &choices).replace("{instruction}", instruction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_viewspatial_layout() {
        let mut s = Sample::new("1", "viewspatial");
        s.set_options(["left", "right"]).unwrap();
        let p = PromptTemplate::parse("viewspatial").unwrap();
        assert_eq!(p.render("Where is it?", &s), "Where is it?A. left\nB. right\nReply only to the corresponding option.\nAnswer:");
        assert_eq!(p.resize, ResizePolicy::Exact { width: 280, height: 420 });
        assert!(PromptTemplate::parse("lmms").unwrap().render("Q", &s).starts_with("Question: Q\nChoices: A. left"));
        assert!(PromptTemplate::parse("/no/such/file").is_err());
        let d = PromptTemplate::parse("default").unwrap();
        assert_eq!(d.render("Q?", &s), "Q?\nA. left\nB. right\nAnswer with the option's letter from the given choices directly.");
        let mut yn = Sample::new("2", "vsr");
        yn.answer_style = AnswerStyle::YesNo;
        assert_eq!(d.render("Is the cat on the mat?", &yn), "Is the cat on the mat?\nAnswer with yes or no.");
        let mut word = Sample::new("3", "whatsup");
        word.answer_style = AnswerStyle::Word;
        assert_eq!(d.render("Where is the cup?", &word), "Where is the cup?\nAnswer the question using a single word or phrase.");
    }
}
