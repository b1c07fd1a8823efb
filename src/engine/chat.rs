//! Chat templates: the checkpoint's own Jinja template, rendered with
//! minijinja (plus Python string methods), found in `chat_template.jinja`,
//! `chat_template.json` or `tokenizer_config.json`. Qwen2.5-VL's own format
//! is the fallback when none is present.

use super::config::{read_json, ConfigError};
use super::template_guard as guard;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Qwen2.5-VL-Instruct's template, used only when a checkpoint ships none.
pub const BUILTIN_QWEN_TEMPLATE: &str = include_str!("qwen2_5_vl_chat_template.jinja");

#[derive(Clone, Debug, PartialEq)]
pub enum TemplateSource {
    Jinja,
    ChatTemplateJson,
    TokenizerConfig,
    Builtin,
}

pub struct ChatTemplate {
    pub source: String,
    pub origin: TemplateSource,
    env: minijinja::Environment<'static>,
}

/// One part of a message: an image placeholder or text.
#[derive(Clone, Debug, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ContentPart {
    pub fn image() -> ContentPart {
        ContentPart { kind: "image", text: None }
    }
    pub fn text(t: impl Into<String>) -> ContentPart {
        ContentPart { kind: "text", text: Some(t.into()) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub role: String,
    pub content: Vec<ContentPart>,
}

impl Message {
    /// One user turn holding the images first, then the text, as the HF
    /// processor examples do.
    pub fn user_with_images(n_images: usize, text: &str) -> Message {
        let mut content: Vec<ContentPart> = (0..n_images).map(|_| ContentPart::image()).collect();
        content.push(ContentPart::text(text));
        Message { role: "user".into(), content }
    }
}

fn template_from_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // A list of named templates: take "default".
        Value::Array(items) => items
            .iter()
            .find(|i| i.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| items.first())
            .and_then(|i| i.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

impl ChatTemplate {
    pub fn load(dir: &Path) -> Result<ChatTemplate> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            let text = crate::fsutil::read_text(&jinja).with_context(|| format!("{}: cannot read", jinja.display()))?;
            return Self::new(text, TemplateSource::Jinja);
        }
        for (name, origin) in
            [("chat_template.json", TemplateSource::ChatTemplateJson), ("tokenizer_config.json", TemplateSource::TokenizerConfig)]
        {
            let file = dir.join(name);
            if !file.exists() {
                continue;
            }
            let v = read_json(&file)?;
            match v.get("chat_template") {
                None | Some(Value::Null) => continue,
                Some(t) => {
                    let text = template_from_value(t).ok_or_else(|| ConfigError::Field {
                        file: file.clone(),
                        field: "chat_template".into(),
                        problem: "expected a string or a list of {name, template}".into(),
                    })?;
                    return Self::new(text, origin);
                }
            }
        }
        Self::new(BUILTIN_QWEN_TEMPLATE.to_string(), TemplateSource::Builtin)
    }

    pub fn new(source: String, origin: TemplateSource) -> Result<ChatTemplate> {
        let mut env = minijinja::Environment::new();
        env.set_fuel(Some(guard::FUEL));
        env.set_recursion_limit(guard::RECURSION);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.clone()).with_context(|| format!("chat template ({origin:?}) does not parse"))?;
        let template = ChatTemplate { source, origin, env };
        if template.origin != TemplateSource::Builtin {
            template.probe()?;
        }
        Ok(template)
    }

    /// Renders a two-turn conversation with images in a limited child
    /// process; a template that exhausts it is refused.
    fn probe(&self) -> Result<()> {
        let text = "Where is the red cup relative to the man in white? A. left B. right C. front D. back";
        let conversation = [
            Message { role: "system".into(), content: vec![ContentPart::text("You are a helpful assistant.")] },
            Message::user_with_images(2, text),
            Message { role: "assistant".into(), content: vec![ContentPart::text("A")] },
            Message::user_with_images(1, text),
        ];
        match guard::probe(|| self.render(&conversation, true).is_ok()) {
            Err(guard::ProbeFailure::Killed(signal)) => anyhow::bail!(
                "chat template ({:?}) was stopped (signal {signal}) rendering a short probe conversation: \
                 it needs more than 256 MiB or 10 s of CPU; refusing it",
                self.origin
            ),
            // An error on the probe (e.g. raise_exception on a role it does
            // not know) is the template's business: real renders report it.
            Err(guard::ProbeFailure::Error) | Ok(()) => Ok(()),
        }
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template("chat")?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            add_vision_id => false,
        };
        let mut out = guard::CappedOutput { text: Vec::new() };
        tmpl.render_captured_to(ctx, &mut out).context("rendering the chat template (fuel, recursion and output are limited)")?;
        String::from_utf8(out.text).context("the chat template wrote bad UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_renders_qwen_format() {
        let t = ChatTemplate::new(BUILTIN_QWEN_TEMPLATE.into(), TemplateSource::Builtin).unwrap();
        let s = t.render(&[Message::user_with_images(2, "Where is the dog?")], true).unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
             <|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>\
             Where is the dog?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn finds_templates_in_each_place() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ChatTemplate::load(dir.path()).unwrap().origin, TemplateSource::Builtin);
        std::fs::write(dir.path().join("tokenizer_config.json"), r#"{"chat_template": "T:{{ messages[0].content[0].text }}"}"#).unwrap();
        let t = ChatTemplate::load(dir.path()).unwrap();
        assert_eq!(t.origin, TemplateSource::TokenizerConfig);
        assert_eq!(t.render(&[Message::user_with_images(0, "hi")], true).unwrap(), "T:hi");
        std::fs::write(dir.path().join("chat_template.json"), r#"{"chat_template": "J:{{ messages[0].content[0].text.upper() }}"}"#)
            .unwrap();
        let t = ChatTemplate::load(dir.path()).unwrap();
        assert_eq!(t.origin, TemplateSource::ChatTemplateJson);
        assert_eq!(t.render(&[Message::user_with_images(0, "hi")], true).unwrap(), "J:HI");
        std::fs::write(dir.path().join("chat_template.jinja"), "X").unwrap();
        assert_eq!(ChatTemplate::load(dir.path()).unwrap().origin, TemplateSource::Jinja);
        std::fs::write(dir.path().join("chat_template.jinja"), "{% if %}").unwrap();
        assert!(ChatTemplate::load(dir.path()).err().unwrap().to_string().contains("does not parse"));
    }

    #[test]
    fn hostile_templates_end_with_an_error() {
        let t = |src: &str| ChatTemplate::new(src.into(), TemplateSource::Jinja);
        // Nested loops of 10k: out of fuel instead of running for hours.
        let loops = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}x";
        let err = format!("{:#}", t(loops).unwrap().render(&[Message::user_with_images(0, "hi")], true).unwrap_err());
        assert!(err.contains("fuel"), "{err}");
        // A string doubled until memory runs out: refused at load by the probe.
        let doubling =
            "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
        let err = format!("{:#}", t(doubling).err().unwrap());
        assert!(err.contains("refusing it"), "{err}");
        // Output above the cap.
        let wide = "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}";
        let err = format!("{:#}", t(wide).unwrap().render(&[Message::user_with_images(0, "hi")], true).unwrap_err());
        assert!(err.contains("more than 16 MiB") || err.contains("fuel"), "{err}");
        // Recursion.
        let deep = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        let err = format!("{:#}", t(deep).unwrap().render(&[Message::user_with_images(0, "hi")], true).unwrap_err());
        assert!(err.contains("recursion") || err.contains("fuel"), "{err}");
    }
}
