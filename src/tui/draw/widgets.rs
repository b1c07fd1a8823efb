//! Small drawing helpers shared by the panes.

use crate::runs::Record;
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::state::App;
use crate::tui::theme::Theme;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

/// The key the active keymap binds to `action` in `mode` (or globally), for
/// a hint; "—" when none is. Hints read the keymap, so a rebinding shows.
pub fn key(app: &App, mode: Mode, action: Action) -> String {
    app.keymap.key_for(mode, action).unwrap_or("—").to_string()
}

/// "k what · k2 what2" for the actions bound in `mode` (or globally);
/// actions bound to no key are left out rather than shown with a wrong one.
pub fn hints(app: &App, mode: Mode, items: &[(Action, &str)]) -> String {
    hint_items(app, mode, items).join(" · ")
}

/// Each bound action as "k what".
pub fn hint_items(app: &App, mode: Mode, items: &[(Action, &str)]) -> Vec<String> {
    items.iter().filter_map(|(a, what)| Some(format!("{} {what}", app.keymap.key_for(mode, *a)?))).collect()
}

/// `items` joined by " · " into lines of at most `width` columns, never
/// breaking an item (one longer than a line gets a line of its own).
pub fn packed(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 3 + item.chars().count() <= width => {
                l.push_str(" · ");
                l.push_str(item);
            }
            _ => lines.push(item.clone()),
        }
    }
    lines
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// A horizontal bar of `width` cells filled to `share` (0..=1), with eighth-cell precision.
pub fn bar(share: f64, width: usize, color: Color) -> Span<'static> {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (share.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTS[eighths % 8]);
    let pad = width.saturating_sub(s.chars().count());
    s.push_str(&" ".repeat(pad));
    Span::styled(s, Style::default().fg(color))
}

/// Seconds as "1m05s" / "12s".
pub fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The verdict in a glyph and words ("✗ wrong · horizontal flip"), in its colour.
pub fn verdict(r: &Record, t: &Theme) -> Span<'static> {
    Span::styled(r.verdict.label(), t.colour(t.verdict_color(&r.verdict)).add_modifier(Modifier::BOLD))
}

/// What the record says the model answered: the direction, else the letter.
pub fn predicted(r: &Record) -> String {
    r.predicted_direction.map(|d| d.name()).or_else(|| r.predicted_letter.clone()).unwrap_or_else(|| "—".into())
}
