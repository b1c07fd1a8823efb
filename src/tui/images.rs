//! Images inside panes through ratatui-image. Protocol state is kept per
//! slot (the sample image, the plain and boxed heatmaps) and rebuilt only
//! when what the slot shows changes, so redrawing stays cheap.
//!
//! Decoding an image and rendering a heatmap are file and CPU work: with a
//! lane (the running workbench) they happen on a thread of their own, the
//! slot says "decoding…" meanwhile, and only the newest request per slot is
//! made (scrolling past ten samples decodes one). Without a lane (tests,
//! snapshots) they happen in place.

use image::DynamicImage;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::StatefulImage;
use std::collections::HashMap;
use std::sync::mpsc;

/// Makes one slot's image.
pub type MakeImage = Box<dyn FnOnce() -> Result<DynamicImage, String> + Send>;

type Request = (&'static str, String, MakeImage);
type Made = (&'static str, String, Result<DynamicImage, String>);

struct Slot {
    key: String,
    /// None while the lane is making it.
    shown: Option<Result<StatefulProtocol, String>>,
}

struct Lane {
    requests: mpsc::Sender<Request>,
    made: mpsc::Receiver<Made>,
}

pub struct ImageCache {
    picker: Picker,
    slots: HashMap<&'static str, Slot>,
    lane: Option<Lane>,
}

impl ImageCache {
    pub fn new(picker: Picker) -> ImageCache {
        ImageCache { picker, slots: HashMap::new(), lane: None }
    }

    /// Halfblocks: what tests and tmux use.
    pub fn halfblocks() -> ImageCache {
        ImageCache::new(Picker::halfblocks())
    }

    /// Makes images on a thread of their own from now on; `ready` is called
    /// after each one, so the UI can redraw.
    pub fn start_lane(&mut self, ready: impl Fn() + Send + 'static) {
        let (requests, inbox) = mpsc::channel::<Request>();
        let (done, made) = mpsc::channel::<Made>();
        let spawned = std::thread::Builder::new().name("flipscope-images".into()).spawn(move || {
            while let Ok(first) = inbox.recv() {
                // Only the newest request per slot is worth making.
                let mut newest: Vec<Request> = vec![first];
                while let Ok(r) = inbox.try_recv() {
                    newest.retain(|(slot, _, _)| *slot != r.0);
                    newest.push(r);
                }
                for (slot, key, make) in newest {
                    let result = make();
                    if done.send((slot, key, result)).is_err() {
                        return;
                    }
                    ready();
                }
            }
        });
        if spawned.is_ok() {
            self.lane = Some(Lane { requests, made });
        }
    }

    pub fn cycle_protocol(&mut self) {
        let next = self.picker.protocol_type().next();
        self.picker.set_protocol_type(next);
        self.slots.clear();
    }

    pub fn protocol_name(&self) -> String {
        format!("{:?}", self.picker.protocol_type()).to_lowercase()
    }

    /// Takes what the lane made since the last draw; results for a key a
    /// slot no longer shows are dropped.
    fn collect(&mut self) {
        let Some(lane) = &self.lane else { return };
        while let Ok((slot, key, result)) = lane.made.try_recv() {
            if let Some(s) = self.slots.get_mut(slot).filter(|s| s.key == key) {
                s.shown = Some(result.map(|img| self.picker.new_resize_protocol(img)));
            }
        }
    }

    /// Draws the image `key` names into `area`. When the slot shows something
    /// else, `maker` is asked (on this thread, so it only gathers what it
    /// needs) for the work that makes the image (on the lane).
    pub fn draw(
        &mut self,
        f: &mut Frame,
        area: Rect,
        slot: &'static str,
        key: &str,
        styles: (Style, Style),
        maker: impl FnOnce() -> MakeImage,
    ) {
        let (error_style, pending_style) = styles;
        self.collect();
        if area.width == 0 || area.height == 0 {
            return;
        }
        let stale = self.slots.get(slot).is_none_or(|s| s.key != key);
        if stale {
            let make = maker();
            let shown = match &self.lane {
                Some(lane) => match lane.requests.send((slot, key.to_string(), make)) {
                    Ok(()) => None,
                    Err(_) => Some(Err("the image thread has stopped".to_string())),
                },
                None => Some(make().map(|img| self.picker.new_resize_protocol(img))),
            };
            self.slots.insert(slot, Slot { key: key.to_string(), shown });
        }
        match self.slots.get_mut(slot).map(|s| &mut s.shown) {
            Some(Some(Ok(p))) => f.render_stateful_widget(StatefulImage::default(), area, p),
            Some(Some(Err(e))) => f.render_widget(Paragraph::new(e.clone()).wrap(Wrap { trim: true }).style(error_style), area),
            Some(None) => f.render_widget(Paragraph::new("decoding…").style(pending_style), area),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn screen(t: &Terminal<TestBackend>) -> String {
        t.backend().buffer().content().iter().map(|c| c.symbol()).collect()
    }

    #[test]
    fn the_lane_makes_images_off_the_drawing_thread_newest_first() {
        let mut cache = ImageCache::halfblocks();
        let ready = Arc::new(AtomicUsize::new(0));
        let r = ready.clone();
        cache.start_lane(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let mut term = Terminal::new(TestBackend::new(20, 6)).unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let drawing_thread = std::thread::current().id();
        let styles = (Style::default(), Style::default());
        // The first image waits on the gate: drawing must not.
        term.draw(|f| {
            cache.draw(f, f.area(), "sample", "a", styles, move || {
                Box::new(move || {
                    assert_ne!(std::thread::current().id(), drawing_thread);
                    started_tx.send(()).unwrap();
                    gate_rx.recv().unwrap();
                    Ok(DynamicImage::new_rgb8(4, 4))
                })
            })
        })
        .unwrap();
        assert!(screen(&term).contains("decoding…"));
        started_rx.recv().unwrap();
        // Two more keys for the same slot while the first is being made.
        for key in ["b", "c"] {
            term.draw(|f| cache.draw(f, f.area(), "sample", key, styles, move || Box::new(move || Err(format!("made {key}"))))).unwrap();
        }
        gate_tx.send(()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !screen(&term).contains("made c") {
            assert!(std::time::Instant::now() < deadline, "{}", screen(&term));
            std::thread::sleep(std::time::Duration::from_millis(5));
            term.draw(|f| cache.draw(f, f.area(), "sample", "c", styles, || unreachable!("already asked"))).unwrap();
        }
        // "a" (shown late, then dropped) and "c" were made; "b" was skipped as stale.
        assert_eq!(ready.load(Ordering::SeqCst), 2);
    }
}
