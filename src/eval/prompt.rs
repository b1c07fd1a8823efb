//! Prompt templates: `{question}` and `{choices}` (lettered option lines).

use crate::data::{AnswerStyle, Sample};
use crate::engine::ResizePolicy;
use anyhow::{bail, Context, Result};

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
            "default" => t(
                "default",
                "{question}\n{choices}\nAnswer with the option's letter from the given choices directly.",
                false,
                ResizePolicy::Auto,
            ),
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
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--prompt `{path}` is not default, viewspatial, lmms or a readable file"))?;
                if !text.contains("{question}") {
                    bail!("{path}: a prompt template needs {{question}}");
                }
                t(path, text.trim_end_matches('\n'), false, ResizePolicy::Auto)
            }
        })
    }

    pub fn render(&self, question: &str, sample: &Sample) -> String {
        let choices = match (sample.options.is_empty(), sample.answer_style) {
            (true, AnswerStyle::YesNo) => "yes or no".to_string(),
            (true, _) => String::new(),
            (false, _) => sample.choices_text(),
        };
        self.template.replace("{question}", question).replace("{choices}", &choices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_viewspatial_layout() {
        let mut s = Sample::new("1", "viewspatial");
        s.set_options(["left", "right"]);
        let p = PromptTemplate::parse("viewspatial").unwrap();
        assert_eq!(p.render("Where is it?", &s), "Where is it?A. left\nB. right\nReply only to the corresponding option.\nAnswer:");
        assert_eq!(p.resize, ResizePolicy::Exact { width: 280, height: 420 });
        assert!(PromptTemplate::parse("lmms").unwrap().render("Q", &s).starts_with("Question: Q\nChoices: A. left"));
        assert!(PromptTemplate::parse("/no/such/file").is_err());
    }
}
