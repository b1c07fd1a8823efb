//! Keymaps as data (yazi style): per mode, `[[mode]] on/run/desc`. The
//! default is embedded; `~/.config/flipscope/keymap.toml` overrides it.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Binding {
    pub on: String,
    pub run: String,
    pub desc: String,
}

/// Actions a binding may name.
pub const ACTIONS: [&str; 10] = ["quit", "help", "cycle_protocol", "next", "prev", "first", "last", "next_frame", "prev_frame", "noop"];

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    pub modes: BTreeMap<String, Vec<Binding>>,
}

impl Keymap {
    pub fn parse(text: &str, origin: &str) -> Result<Keymap> {
        let modes: BTreeMap<String, Vec<Binding>> = toml::from_str(text).with_context(|| format!("{origin}: invalid keymap"))?;
        for (mode, binds) in &modes {
            for b in binds {
                if !ACTIONS.contains(&b.run.as_str()) {
                    bail!("{origin}: [{mode}] on = \"{}\": unknown action `{}` (known: {})", b.on, b.run, ACTIONS.join(", "));
                }
            }
        }
        Ok(Keymap { modes })
    }

    /// The embedded default with the user's file layered on top: a user
    /// binding replaces the default binding of the same key in that mode.
    pub fn load() -> Result<Keymap> {
        let mut km = Keymap::parse(DEFAULT, "keymaps/default.toml")?;
        let user = crate::config::config_dir().join("keymap.toml");
        if let Ok(text) = std::fs::read_to_string(&user) {
            km.overlay(Keymap::parse(&text, &user.display().to_string())?);
        }
        Ok(km)
    }

    pub fn overlay(&mut self, other: Keymap) {
        for (mode, binds) in other.modes {
            let list = self.modes.entry(mode).or_default();
            for b in binds {
                list.retain(|x| x.on != b.on);
                list.push(b);
            }
        }
    }

    /// The action for a key in a mode, falling back to `global`.
    pub fn action(&self, mode: &str, key: &str) -> Option<&str> {
        [mode, "global"]
            .iter()
            .filter_map(|m| self.modes.get(*m))
            .find_map(|binds| binds.iter().find(|b| b.on == key))
            .map(|b| b.run.as_str())
    }

    /// Help lines generated from the keymap.
    pub fn help(&self) -> Vec<(String, String, String)> {
        self.modes.iter().flat_map(|(m, bs)| bs.iter().map(move |b| (m.clone(), b.on.clone(), b.desc.clone()))).collect()
    }
}

/// crossterm key -> the keymap's key name ("j", "G", "down", "ctrl-c").
pub fn key_name(key: &crossterm::event::KeyEvent) -> String {
    use crossterm::event::{KeyCode, KeyModifiers};
    let base = match key.code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("ctrl-{base}")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keymap_parses_and_resolves() {
        let km = Keymap::parse(DEFAULT, "default").unwrap();
        assert_eq!(km.action("samples", "j"), Some("next"));
        assert_eq!(km.action("samples", "q"), Some("quit"), "falls back to global");
        assert!(km.help().iter().any(|(_, on, desc)| on == "?" && desc.contains("help")));
    }

    #[test]
    fn unknown_action_is_named() {
        let err = Keymap::parse("[[samples]]\non = \"x\"\nrun = \"explode\"\ndesc = \"\"\n", "user.toml").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("user.toml") && msg.contains("unknown action `explode`"), "{msg}");
    }

    #[test]
    fn missing_desc_is_an_error() {
        let err = Keymap::parse("[[samples]]\non = \"x\"\nrun = \"next\"\n", "user.toml").unwrap_err();
        assert!(format!("{err:#}").contains("desc"), "{err:#}");
    }

    #[test]
    fn user_overlay_replaces_same_key() {
        let mut km = Keymap::parse(DEFAULT, "default").unwrap();
        km.overlay(Keymap::parse("[[samples]]\non = \"j\"\nrun = \"prev\"\ndesc = \"up\"\n", "u").unwrap());
        assert_eq!(km.action("samples", "j"), Some("prev"));
        assert_eq!(km.action("samples", "k"), Some("prev"));
    }
}
