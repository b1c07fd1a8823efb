//! Keymaps as data (yazi style): per mode, `[[mode]] on/run/desc`. The
//! default is embedded; `~/.config/flipscope/keymap.toml` overrides it
//! binding by binding, and `keymap = "vim"` there starts from the vim map.

use super::action::Action;
use super::Pane;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");
/// The vim map's bindings, an overlay on `DEFAULT` (see `Keymap::vim`).
pub const VIM: &str = include_str!("../../keymaps/vim.toml");

/// A keymap's modes: one per pane, `global` (every pane) and `input`
/// (typing text). The key files name them as their tables do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Global,
    Samples,
    Sample,
    Live,
    Confusion,
    Saliency,
    Runs,
    Causal,
    Input,
}

impl Mode {
    pub const ALL: [Mode; 9] =
        [Mode::Global, Mode::Samples, Mode::Sample, Mode::Live, Mode::Confusion, Mode::Saliency, Mode::Runs, Mode::Causal, Mode::Input];

    /// The mode's table name in a key file (`[[runs]]`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Samples => "samples",
            Mode::Sample => "sample",
            Mode::Live => "live",
            Mode::Confusion => "confusion",
            Mode::Saliency => "saliency",
            Mode::Runs => "runs",
            Mode::Causal => "causal",
            Mode::Input => "input",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const NAMED_KEYS: [&str; 14] =
    ["up", "down", "left", "right", "enter", "esc", "tab", "backtab", "backspace", "pageup", "pagedown", "home", "end", "space"];

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub on: String,
    pub run: Action,
    pub desc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    on: Spanned<String>,
    run: Spanned<String>,
    desc: String,
}

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    pub modes: BTreeMap<Mode, Vec<Binding>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Whether `key` is a key name flipscope can produce ("j", "G", "ctrl-d", "pagedown").
fn valid_key(key: &str) -> bool {
    let base = key.strip_prefix("ctrl-").or_else(|| key.strip_prefix("alt-")).unwrap_or(key);
    base.chars().count() == 1
        || NAMED_KEYS.contains(&base)
        || (base.starts_with('f') && base[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)))
}

/// The file's shape: one optional list of bindings per mode (named fields,
/// so toml keeps each value's position for error messages).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    /// The base map's name: `resolve` reads it from the raw table first; it
    /// is named here only so that `deny_unknown_fields` accepts it.
    #[serde(rename = "keymap")]
    _keymap: Option<String>,
    global: Option<Vec<RawBinding>>,
    samples: Option<Vec<RawBinding>>,
    sample: Option<Vec<RawBinding>>,
    live: Option<Vec<RawBinding>>,
    confusion: Option<Vec<RawBinding>>,
    saliency: Option<Vec<RawBinding>>,
    runs: Option<Vec<RawBinding>>,
    causal: Option<Vec<RawBinding>>,
    input: Option<Vec<RawBinding>>,
}

impl Keymap {
    pub fn parse(text: &str, origin: &str) -> Result<Keymap> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: invalid keymap: {e}"))?;
        let lists = [file.global, file.samples, file.sample, file.live, file.confusion, file.saliency, file.runs, file.causal, file.input];
        let mut modes = BTreeMap::new();
        for (mode, raw) in Mode::ALL.into_iter().zip(lists) {
            if let Some(raw) = raw {
                modes.insert(mode, Self::bindings(text, origin, mode, raw)?);
            }
        }
        Ok(Keymap { modes })
    }

    fn bindings(text: &str, origin: &str, mode: Mode, raw: Vec<RawBinding>) -> Result<Vec<Binding>> {
        let mut out: Vec<Binding> = Vec::new();
        for b in raw {
            let line = line_of(text, b.on.span().start);
            let on = b.on.into_inner();
            if !valid_key(&on) {
                bail!(
                    "{origin}: line {line}: [[{mode}]] on = \"{on}\": not a key (a character, ctrl-X, alt-X, F1-F12 or one of {})",
                    NAMED_KEYS.join(", ")
                );
            }
            let rline = line_of(text, b.run.span().start);
            let run_name = b.run.into_inner();
            let Some(run) = Action::from_name(&run_name) else {
                bail!("{origin}: line {rline}: [[{mode}]] on = \"{on}\": unknown action `{run_name}` (the actions are listed in keymaps/default.toml)");
            };
            if let Some(prev) = out.iter().find(|x| x.on == on) {
                bail!("{origin}: line {line}: [[{mode}]] on = \"{on}\" is bound twice (`{}` and `{run_name}`)", prev.run);
            }
            out.push(Binding { on, run, desc: b.desc });
        }
        Ok(out)
    }

    /// The embedded default (or vim) map with the user's file layered on top.
    pub fn load() -> Result<Keymap> {
        let user = crate::config::config_dir().join("keymap.toml");
        let text = crate::fsutil::read_optional_text(&user)?;
        Keymap::resolve(text.as_deref().map(|t| (t, user.display().to_string())))
    }

    /// The base map the user's file names (`keymap = "vim"`), then its bindings.
    pub fn resolve(user: Option<(&str, String)>) -> Result<Keymap> {
        let Some((text, origin)) = user else { return Keymap::parse(DEFAULT, "keymaps/default.toml") };
        let table: toml::Table = toml::from_str(text).with_context(|| format!("{origin}: invalid keymap"))?;
        let mut km = match table.get("keymap") {
            None => Keymap::parse(DEFAULT, "keymaps/default.toml")?,
            Some(toml::Value::String(s)) if s == "default" => Keymap::parse(DEFAULT, "keymaps/default.toml")?,
            Some(toml::Value::String(s)) if s == "vim" => Keymap::vim()?,
            Some(other) => {
                let line = text.find("keymap").map(|o| line_of(text, o)).unwrap_or(1);
                bail!("{origin}: line {line}: keymap = {other}: not \"default\" or \"vim\"")
            }
        };
        km.overlay(Keymap::parse(text, &origin)?);
        Ok(km)
    }

    /// The default map with the vim overlay on top.
    pub fn vim() -> Result<Keymap> {
        let mut km = Keymap::parse(DEFAULT, "keymaps/default.toml")?;
        km.overlay(Keymap::parse(VIM, "keymaps/vim.toml")?);
        Ok(km)
    }

    /// A user binding replaces the binding of the same key in that mode.
    pub fn overlay(&mut self, other: Keymap) {
        for (mode, binds) in other.modes {
            let list = self.modes.entry(mode).or_default();
            for b in binds {
                list.retain(|x| x.on != b.on);
                list.push(b);
            }
        }
    }

    /// The action for a key in a pane, falling back to `global`.
    pub fn action(&self, pane: Pane, key: &str) -> Option<Action> {
        [pane.mode(), Mode::Global].into_iter().find_map(|m| self.lookup(m, key))
    }

    /// The action for a key in one mode only.
    pub fn lookup(&self, mode: Mode, key: &str) -> Option<Action> {
        self.modes.get(&mode)?.iter().find(|b| b.on == key).map(|b| b.run)
    }

    /// The first key bound to `action` in `mode` or `global`, for hints.
    pub fn key_for(&self, mode: Mode, action: Action) -> Option<&str> {
        [mode, Mode::Global].iter().filter_map(|m| self.modes.get(m)).flatten().find(|b| b.run == action).map(|b| b.on.as_str())
    }

    /// Help rows (mode, keys, desc) generated from the map: keys bound to
    /// the same action and text in a mode are listed together.
    pub fn help(&self) -> Vec<(Mode, String, String)> {
        let mut out: Vec<(Mode, String, String)> = Vec::new();
        for mode in Mode::ALL {
            for b in self.modes.get(&mode).into_iter().flatten() {
                match out.iter_mut().find(|(m, _, d)| *m == mode && *d == b.desc) {
                    Some(row) => row.1 = format!("{} {}", row.1, b.on),
                    None => out.push((mode, b.on.clone(), b.desc.clone())),
                }
            }
        }
        out
    }
}

/// crossterm key -> the keymap's key name ("j", "G", "down", "ctrl-c").
pub fn key_name(key: &crossterm::event::KeyEvent) -> String {
    use crossterm::event::{KeyCode, KeyModifiers};
    let base = match key.code {
        KeyCode::Char(' ') => "space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::F(n) => format!("f{n}"),
        other => format!("{other:?}").to_lowercase(),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("ctrl-{base}")
    } else if key.modifiers.contains(KeyModifiers::ALT) {
        format!("alt-{base}")
    } else {
        base
    }
}
