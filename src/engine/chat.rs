//! Chat templates: the checkpoint's own Jinja template, rendered with
//! minijinja (plus Python string methods), found in `chat_template.jinja`,
//! `chat_template.json` or `tokenizer_config.json`. Qwen2.5-VL's own format
//! is the fallback when none is present.

use super::config::{read_json, ConfigError};
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
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.clone()).with_context(|| format!("chat template ({origin:?}) does not parse"))?;
        Ok(ChatTemplate { source, origin, env })
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template("chat")?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            add_vision_id => false,
        };
        tmpl.render(ctx).context("rendering the chat template")
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
}
