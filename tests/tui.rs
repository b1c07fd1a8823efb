//! The sample browser drawn into a TestBackend (gitui style snapshots).

use flipscope::data;
use flipscope::tui::app::App;
use flipscope::tui::draw::{draw, ImageCache};
use flipscope::tui::keymap::{Keymap, DEFAULT};
use flipscope::tui::theme::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut images = ImageCache::new(ratatui_image::picker::Picker::halfblocks());
    term.draw(|f| draw(f, app, &mut images)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    data::synth::write(dir.path(), 6, 1).unwrap();
    let ds = data::load(dir.path().to_str().unwrap()).unwrap();
    let app = App::new(ds, Keymap::parse(DEFAULT, "default").unwrap(), Theme::parse(theme::DEFAULT, "default").unwrap());
    (dir, app)
}

#[test]
fn browser_at_80x24() {
    let (_d, mut app) = app();
    insta::assert_snapshot!("browser_first", screen(&app, 80, 24));
    app.update("next");
    app.update("next");
    let s = screen(&app, 80, 24);
    assert!(s.contains("synth-00002 · image 1/1"), "{s}");
    insta::assert_snapshot!("browser_third", s);
}

#[test]
fn help_is_generated_from_the_keymap() {
    let (_d, mut app) = app();
    app.update("help");
    let s = screen(&app, 100, 30);
    for b in &app.keymap.modes["samples"] {
        assert!(s.contains(&b.desc), "help lists `{}`:\n{s}", b.desc);
    }
}

#[test]
fn navigation_clamps_at_the_ends() {
    let (_d, mut app) = app();
    app.update("prev");
    assert_eq!(app.selected, 0);
    app.update("last");
    assert_eq!(app.selected, 5);
    app.update("next");
    assert_eq!(app.selected, 5);
    app.update("quit");
    assert!(app.quit);
}
