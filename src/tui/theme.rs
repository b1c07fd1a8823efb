//! Themes as data: colour names or #rrggbb, with a colour per error kind.
//! Bundled: default, light, high-contrast; `--theme NAME` also finds
//! `~/.config/flipscope/themes/NAME.toml`. Keys in
//! `~/.config/flipscope/theme.toml` override the chosen theme's.

use crate::spatial::{ErrorKind, Verdict};
use anyhow::{Context, Result};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::str::FromStr;

pub const DEFAULT: &str = include_str!("../../themes/default.toml");
pub const BUNDLED: [(&str, &str); 3] = [
    ("default", DEFAULT),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

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
    /// Heat-cell backgrounds from cold to hot (knockout and patching tables).
    #[serde(default)]
    heat: Option<Vec<String>>,
    error_kind: std::collections::BTreeMap<String, String>,
}

/// The heat ramp of a theme file without one.
const HEAT: [&str; 6] = ["#262626", "#5f0000", "#870000", "#af5f00", "#d78700", "#ffd700"];

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
    /// Heat-cell backgrounds, cold to hot (at least two).
    pub heat: Vec<Color>,
    /// Indexed like `ErrorKind::ALL`; `Correct` uses `correct`.
    pub error_kind: Vec<(ErrorKind, Color)>,
}

impl Theme {
    pub fn parse(text: &str, origin: &str) -> Result<Theme> {
        let f: ThemeFile = toml::from_str(text).with_context(|| format!("{origin}: invalid theme"))?;
        Self::from_file(f, origin)
    }

    fn from_file(f: ThemeFile, origin: &str) -> Result<Theme> {
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
            heat: {
                let ramp: Vec<String> = f.heat.unwrap_or_else(|| HEAT.iter().map(|s| s.to_string()).collect());
                if ramp.len() < 2 {
                    anyhow::bail!("{origin}: field `heat`: give at least two colours, cold to hot");
                }
                ramp.iter().enumerate().map(|(i, v)| c(&format!("heat[{i}]"), v)).collect::<Result<_>>()?
            },
            error_kind: {
                for key in f.error_kind.keys() {
                    if ErrorKind::from_name(key).is_none_or(|k| k == ErrorKind::Correct) {
                        anyhow::bail!("{origin}: [error_kind] has unknown kind `{key}`");
                    }
                }
                ErrorKind::ALL
                    .into_iter()
                    .filter(|k| *k != ErrorKind::Correct)
                    .map(|k| match f.error_kind.get(k.name()) {
                        Some(v) => Ok((k, c(&format!("error_kind.{}", k.name()), v)?)),
                        None => anyhow::bail!("{origin}: [error_kind] is missing `{}`", k.name()),
                    })
                    .collect::<Result<_>>()?
            },
        })
    }

    // Styles by role (gitui style): panes ask for a role, not a colour.

    /// Ordinary text.
    pub fn text(&self) -> Style {
        Style::default().fg(self.fg)
    }

    /// Secondary text: hints, labels, empty states.
    pub fn muted(&self) -> Style {
        Style::default().fg(self.dim)
    }

    /// Text that stands out (the pane's own highlights).
    pub fn highlight(&self) -> Style {
        Style::default().fg(self.accent)
    }

    /// A heading: bold accent when its part of the pane is active, else bold dim.
    pub fn heading(&self, active: bool) -> Style {
        Style::default().fg(if active { self.accent } else { self.dim }).add_modifier(Modifier::BOLD)
    }

    /// A title in the pane's own colour, bold.
    pub fn title(&self) -> Style {
        self.text().add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        Style::default().fg(self.correct)
    }

    pub fn bad(&self) -> Style {
        Style::default().fg(self.wrong)
    }

    /// Gold answers, and work in progress.
    pub fn golden(&self) -> Style {
        Style::default().fg(self.gold)
    }

    /// `style` on the selection background, bold.
    pub fn selected(&self, style: Style) -> Style {
        style.bg(self.selected_bg).add_modifier(Modifier::BOLD)
    }

    /// A heat cell for `x` in 0..=1 (clamped): the ramp's colour behind
    /// text dark or light enough to read on it; NaN is an empty, muted cell.
    pub fn heat(&self, x: f64) -> Style {
        if !x.is_finite() {
            return self.muted();
        }
        let i = (x.clamp(0.0, 1.0) * (self.heat.len() - 1) as f64).round() as usize;
        let bg = self.heat[i];
        let fg = match bg {
            Color::Rgb(r, g, b) if 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64 > 140.0 => Color::Black,
            Color::Rgb(..) => Color::White,
            _ => self.fg,
        };
        Style::default().bg(bg).fg(fg)
    }

    /// An error kind in its colour.
    pub fn kind(&self, kind: ErrorKind) -> Style {
        Style::default().fg(self.kind_color(kind))
    }

    /// Any colour as a foreground (for colours computed by the pane).
    pub fn colour(&self, c: Color) -> Style {
        Style::default().fg(c)
    }

    /// The colour a verdict is drawn in: its error kind's for a miss.
    pub fn verdict_color(&self, v: &Verdict) -> Color {
        match v {
            Verdict::Correct => self.correct,
            Verdict::Wrong(k) => self.kind_color(*k),
            Verdict::Unparsed => self.kind_color(ErrorKind::Unparsed),
            Verdict::Failed(_) => self.wrong,
            Verdict::Unjudged => self.dim,
        }
    }

    /// The colour of an error kind by its name (`wrong` for names it does not know).
    pub fn kind_name_color(&self, name: &str) -> Color {
        ErrorKind::from_name(name).map(|k| self.kind_color(k)).unwrap_or(self.wrong)
    }

    pub fn kind_color(&self, kind: ErrorKind) -> Color {
        self.error_kind.iter().find(|(k, _)| *k == kind).map(|(_, c)| *c).unwrap_or(self.correct)
    }

    /// A bundled theme or `~/.config/flipscope/themes/NAME.toml`, as TOML text.
    fn source(name: &str) -> Result<(String, String)> {
        if let Some((_, text)) = BUNDLED.iter().find(|(n, _)| *n == name) {
            return Ok((text.to_string(), format!("themes/{name}.toml")));
        }
        let user = crate::config::config_dir().join("themes").join(format!("{name}.toml"));
        match crate::fsutil::read_optional_text(&user)? {
            Some(text) => Ok((text, user.display().to_string())),
            None => anyhow::bail!(
                "theme `{name}` is not one of {} and {} does not exist",
                BUNDLED.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
                user.display()
            ),
        }
    }

    /// `name` (default: `default`), with `overlay`'s keys (a user theme.toml) on top.
    pub fn resolve(name: Option<&str>, overlay: Option<(&str, &str)>) -> Result<Theme> {
        let (base, origin) = Self::source(name.unwrap_or("default"))?;
        let mut value: toml::Table = toml::from_str(&base).with_context(|| format!("{origin}: invalid theme"))?;
        let mut origin = origin;
        if let Some((text, user_origin)) = overlay {
            let user: toml::Table = toml::from_str(text).with_context(|| format!("{user_origin}: invalid theme"))?;
            for (k, v) in user {
                match (value.get_mut(&k), v) {
                    (Some(toml::Value::Table(base)), toml::Value::Table(over)) => base.extend(over),
                    (_, v) => {
                        value.insert(k, v);
                    }
                }
            }
            origin = user_origin.to_string();
        }
        let f: ThemeFile = toml::Value::Table(value).try_into().with_context(|| format!("{origin}: invalid theme"))?;
        Self::from_file(f, &origin)
    }

    /// The theme `--theme` names (or the default), with the user's theme.toml on top.
    pub fn load(name: Option<&str>) -> Result<Theme> {
        let user = crate::config::config_dir().join("theme.toml");
        let text = crate::fsutil::read_optional_text(&user)?;
        let origin = user.display().to_string();
        Theme::resolve(name, text.as_deref().map(|t| (t, origin.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_themes_parse() {
        for (name, text) in BUNDLED {
            let t = Theme::parse(text, name).unwrap();
            assert_eq!(t.error_kind.len(), 7, "{name}");
            assert_ne!(t.kind_color(ErrorKind::HorizontalFlip), t.kind_color(ErrorKind::Orthogonal), "{name}");
            // Heat cells: cold and hot differ, and text stays readable on both.
            let (cold, hot) = (t.heat(0.0), t.heat(1.0));
            assert_ne!(cold.bg, hot.bg, "{name}");
            assert_ne!(cold.fg, cold.bg, "{name}");
            assert_ne!(hot.fg, hot.bg, "{name}");
            assert_eq!(t.heat(f64::NAN), t.muted());
        }
        let without = DEFAULT.lines().filter(|l| !l.starts_with("heat")).collect::<Vec<_>>().join("\n");
        assert_eq!(Theme::parse(&without, "t").unwrap().heat.len(), HEAT.len(), "a theme file without `heat` gets the default ramp");
    }

    #[test]
    fn each_bad_theme_has_its_own_message() {
        let cases = [
            (DEFAULT.replace("orthogonal = \"#ffaf5f\"\n", ""), "[error_kind] is missing `orthogonal`"),
            (DEFAULT.replace("unparsed =", "sideways = \"red\"\nunparsed ="), "[error_kind] has unknown kind `sideways`"),
            (DEFAULT.replace("adjacent = \"#d7d75f\"", "adjacent = \"mauvish\""), "field `error_kind.adjacent`: `mauvish` is not a colour"),
            (DEFAULT.replace("fg = \"white\"", "fg = 3"), "invalid theme"),
            (format!("sparkle = \"yes\"\n{DEFAULT}"), "unknown field `sparkle`"),
            (DEFAULT.replace("heat = [\"#262626\",", "heat = [\"lukewarm\","), "field `heat[0]`: `lukewarm` is not a colour"),
            (DEFAULT.replace("heat = [", "heat = [\"red\"]\nunused = ["), "unknown field `unused`"),
            (
                DEFAULT
                    .replace("heat = [\"#262626\", \"#5f0000\", \"#870000\", \"#af5f00\", \"#d78700\", \"#ffd700\"]", "heat = [\"red\"]"),
                "field `heat`: give at least two colours",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", Theme::parse(&text, "theme.toml").unwrap_err());
            assert!(err.contains(want) && err.contains("theme.toml"), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn names_and_user_overlay() {
        let hc = Theme::resolve(Some("high-contrast"), None).unwrap();
        assert_eq!(hc.selected_bg, Color::Blue);
        let over = Theme::resolve(Some("light"), Some(("accent = \"red\"\n[error_kind]\nadjacent = \"#010203\"", "user.toml"))).unwrap();
        assert_eq!(over.accent, Color::Red);
        assert_eq!(over.kind_color(ErrorKind::Adjacent), Color::Rgb(1, 2, 3));
        assert_eq!(over.fg, Color::Black, "other keys keep the light theme's values");
        let err = Theme::resolve(Some("neon"), None).unwrap_err().to_string();
        assert!(err.contains("theme `neon` is not one of default, light, high-contrast"), "{err}");
    }

    #[test]
    fn bad_colour_names_field() {
        let text = DEFAULT.replace("accent = \"cyan\"", "accent = \"blurple\"");
        let err = Theme::parse(&text, "theme.toml").unwrap_err().to_string();
        assert!(err.contains("field `accent`") && err.contains("blurple"), "{err}");
    }
}
