//! Themes as data: colour names or #rrggbb, embedded default, user override
//! at `~/.config/flipscope/theme.toml`.

use anyhow::{Context, Result};
use ratatui::style::Color;
use serde::Deserialize;
use std::str::FromStr;

pub const DEFAULT: &str = include_str!("../../themes/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    fg: String,
    dim: String,
    accent: String,
    selected_bg: String,
    correct: String,
    wrong: String,
    gold: String,
    border: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub fg: Color,
    pub dim: Color,
    pub accent: Color,
    pub selected_bg: Color,
    pub correct: Color,
    pub wrong: Color,
    pub gold: Color,
    pub border: Color,
}

impl Theme {
    pub fn parse(text: &str, origin: &str) -> Result<Theme> {
        let f: ThemeFile = toml::from_str(text).with_context(|| format!("{origin}: invalid theme"))?;
        let c = |field: &str, v: &str| Color::from_str(v).map_err(|_| anyhow::anyhow!("{origin}: field `{field}`: `{v}` is not a colour"));
        Ok(Theme {
            fg: c("fg", &f.fg)?,
            dim: c("dim", &f.dim)?,
            accent: c("accent", &f.accent)?,
            selected_bg: c("selected_bg", &f.selected_bg)?,
            correct: c("correct", &f.correct)?,
            wrong: c("wrong", &f.wrong)?,
            gold: c("gold", &f.gold)?,
            border: c("border", &f.border)?,
        })
    }

    pub fn load() -> Result<Theme> {
        let user = crate::config::config_dir().join("theme.toml");
        match std::fs::read_to_string(&user) {
            Ok(text) => Theme::parse(&text, &user.display().to_string()),
            Err(_) => Theme::parse(DEFAULT, "themes/default.toml"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_themes_parse() {
        Theme::parse(DEFAULT, "default").unwrap();
        Theme::parse(include_str!("../../themes/light.toml"), "light").unwrap();
    }

    #[test]
    fn bad_colour_names_field() {
        let text = DEFAULT.replace("accent = \"cyan\"", "accent = \"blurple\"");
        let err = Theme::parse(&text, "theme.toml").unwrap_err().to_string();
        assert!(err.contains("field `accent`") && err.contains("blurple"), "{err}");
    }
}
