//! The workbench TUI. `update` is pure over [`App`]; drawing is a pure
//! function of the state (plus the image protocol cache ratatui-image needs).
//! The TUI never calls torch.

pub mod app;
pub mod draw;
pub mod keymap;
pub mod theme;

use crate::cli::TuiArgs;
use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyEventKind};
use std::time::Duration;

pub fn run(args: &TuiArgs) -> Result<()> {
    let spec = match &args.data {
        Some(s) => s.clone(),
        None => crate::config::demo_dataset()?.display().to_string(),
    };
    let ds = crate::data::load(&spec).with_context(|| format!("loading {spec}"))?;
    let keymap = keymap::Keymap::load()?;
    let theme = theme::Theme::load(args.theme.as_deref())?;
    let mut app = app::App::new(ds, keymap, theme);
    let mut terminal = ratatui::init();
    let mut terminal_picker = image_picker();
    let picker = terminal_picker.take().unwrap_or_else(ratatui_image::picker::Picker::halfblocks);
    let mut images = draw::ImageCache::new(picker);
    let result = (|| -> Result<()> {
        while !app.quit {
            terminal.draw(|f| draw::draw(f, &app, &mut images))?;
            if event::poll(Duration::from_millis(100))? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
                        let name = keymap::key_name(&k);
                        if name == "ctrl-c" {
                            app.quit = true;
                        } else if let Some(action) = app.keymap.action("samples", &name).map(str::to_string) {
                            app.update(&action);
                            if action == "cycle_protocol" {
                                images.cycle_protocol();
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

/// Asks the terminal which image protocol it speaks. Inside tmux the query
/// goes unanswered, and ratatui-image's reader thread would then swallow the
/// user's first key, so there (or when FLIPSCOPE_IMAGES=halfblocks) we go
/// straight to halfblocks, which work everywhere.
fn image_picker() -> Option<ratatui_image::picker::Picker> {
    let forced = std::env::var("FLIPSCOPE_IMAGES").is_ok_and(|v| v == "halfblocks");
    if forced || std::env::var_os("TMUX").is_some() {
        return None;
    }
    ratatui_image::picker::Picker::from_query_stdio().ok()
}
