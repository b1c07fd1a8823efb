//! TUI state and its pure update function.

use super::keymap::Keymap;
use super::theme::Theme;
use crate::data::Dataset;

pub struct App {
    pub dataset: Dataset,
    pub keymap: Keymap,
    pub theme: Theme,
    pub selected: usize,
    pub frame: usize,
    pub show_help: bool,
    pub quit: bool,
}

impl App {
    pub fn new(dataset: Dataset, keymap: Keymap, theme: Theme) -> App {
        App { dataset, keymap, theme, selected: 0, frame: 0, show_help: false, quit: false }
    }

    pub fn update(&mut self, action: &str) {
        let n = self.dataset.samples.len();
        let frames = self.dataset.samples.get(self.selected).map_or(0, |s| s.images.len());
        match action {
            "quit" => self.quit = true,
            "help" => self.show_help = !self.show_help,
            "next" if n > 0 => self.select((self.selected + 1).min(n - 1)),
            "prev" => self.select(self.selected.saturating_sub(1)),
            "first" => self.select(0),
            "last" if n > 0 => self.select(n - 1),
            "next_frame" if frames > 0 => self.frame = (self.frame + 1) % frames,
            "prev_frame" if frames > 0 => self.frame = (self.frame + frames - 1) % frames,
            _ => {}
        }
    }

    fn select(&mut self, i: usize) {
        if i != self.selected {
            self.selected = i;
            self.frame = 0;
        }
    }
}
