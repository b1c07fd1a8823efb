//! Images inside panes through ratatui-image. Protocol state is kept per
//! slot (the sample image, the plain and boxed heatmaps) and rebuilt only
//! when what the slot shows changes, so redrawing stays cheap.

use image::DynamicImage;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::StatefulImage;
use std::collections::HashMap;

pub struct ImageCache {
    picker: Picker,
    slots: HashMap<&'static str, (String, Result<StatefulProtocol, String>)>,
}

impl ImageCache {
    pub fn new(picker: Picker) -> ImageCache {
        ImageCache { picker, slots: HashMap::new() }
    }

    /// Halfblocks: what tests and tmux use.
    pub fn halfblocks() -> ImageCache {
        ImageCache::new(Picker::halfblocks())
    }

    pub fn cycle_protocol(&mut self) {
        let next = self.picker.protocol_type().next();
        self.picker.set_protocol_type(next);
        self.slots.clear();
    }

    pub fn protocol_name(&self) -> String {
        format!("{:?}", self.picker.protocol_type()).to_lowercase()
    }

    /// Draws the image `key` names into `area`, making it with `make` when the slot shows something else.
    pub fn draw(
        &mut self,
        f: &mut Frame,
        area: Rect,
        slot: &'static str,
        key: &str,
        error_style: Style,
        make: impl FnOnce() -> Result<DynamicImage, String>,
    ) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let stale = self.slots.get(slot).is_none_or(|(k, _)| k != key);
        if stale {
            let proto = make().map(|img| self.picker.new_resize_protocol(img));
            self.slots.insert(slot, (key.to_string(), proto));
        }
        match self.slots.get_mut(slot).map(|s| &mut s.1) {
            Some(Ok(p)) => f.render_stateful_widget(StatefulImage::default(), area, p),
            Some(Err(e)) => f.render_widget(Paragraph::new(e.clone()).wrap(Wrap { trim: true }).style(error_style), area),
            None => {}
        }
    }
}
