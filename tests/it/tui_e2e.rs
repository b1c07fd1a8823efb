//! The real binary in tmux: start it, press keys, read the screen, quit.
//! Needs tmux (installed by the setup on Debian); set FLIPSCOPE_SKIP_TMUX=1
//! to skip on a machine without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Tmux {
        let socket = format!("flipscope-e2e-{}-{name}", std::process::id());
        let bin = env!("CARGO_BIN_EXE_flipscope");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        // HOME and XDG paths point into the test's folder: no user keymap, theme or cache leaks in.
        let cmd = format!(
            "cd '{d}' && HOME='{d}' XDG_CONFIG_HOME='{d}/config' XDG_CACHE_HOME='{d}/cache' '{bin}' {}; echo EXIT=$? > '{d}/exit-{name}'; sleep 60",
            quoted.join(" "),
            d = dir.display()
        );
        let ok = Command::new("tmux").args(["-L", &socket, "new-session", "-d", "-x", "150", "-y", "32", &cmd]).status().unwrap();
        assert!(ok.success(), "tmux new-session");
        Tmux { socket, dir: dir.to_path_buf() }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            Command::new("tmux").args(["-L", &self.socket, "send-keys", k]).status().unwrap();
            std::thread::sleep(Duration::from_millis(80));
        }
    }

    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.screen();
            if want(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn exit_status(&self, name: &str) -> String {
        let path = self.dir.join(format!("exit-{name}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() {
            assert!(Instant::now() < deadline, "flipscope did not exit; the screen:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(path).unwrap().trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn have_tmux() -> bool {
    if std::env::var_os("FLIPSCOPE_SKIP_TMUX").is_some() {
        eprintln!("FLIPSCOPE_SKIP_TMUX is set: skipping the tmux end-to-end test");
        return false;
    }
    assert!(Command::new("tmux").arg("-V").output().is_ok(), "the end-to-end test needs tmux (apt install tmux), or FLIPSCOPE_SKIP_TMUX=1");
    true
}

/// A folder with `n` synthetic scenes in `data/`, for a test that has tmux.
fn scenes(n: usize) -> Option<(tempfile::TempDir, PathBuf)> {
    if !have_tmux() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    flipscope::data::synth::write(&data, n, &flipscope::data::synth::SynthOptions::seeded(3)).unwrap();
    Some((dir, data))
}

#[test]
fn tui_in_tmux_search_ask_help_quit_and_sigterm() {
    let Some((dir, data)) = scenes(6) else { return };
    let model = crate::common::parity::case_dir("flat_tied_odd").join("model");
    let (model, data) = (model.display().to_string(), data.display().to_string());
    let args = ["--model", &model, "--data", &data, "--run", "e2e"];

    let t = Tmux::start(dir.path(), "q", &args);
    let s = t.wait_for("the model to load", |s| s.contains("1 Samples") && s.contains("model ") && !s.contains("loading"));
    let shown = flipscope::tui::short_path(std::path::Path::new(&model));
    assert!(shown.ends_with("flat_tied_odd/model"), "{shown}");
    assert!(
        s.contains(&format!("model {shown}")) && s.contains("6 of 6") && s.contains("run e2e (empty)"),
        "status names model, data and run:\n{s}"
    );
    t.keys(&["/", "0", "0", "0", "3", "Enter"]);
    let s = t.wait_for("the search chip", |s| s.contains("search: 0003") && s.contains("1 of 6"));
    assert!(s.contains("synth-00003"), "{s}");
    // Ask the model about it: the Live pane streams and finishes.
    t.keys(&["3", "a"]);
    t.wait_for("the live answer", |s| s.contains("synth-00003 · plain · done"));
    t.keys(&["?"]);
    t.wait_for("the help", |s| s.contains("Keys (") && s.contains("Ask the model now (plain)"));
    t.keys(&["?", "q"]);
    assert_eq!(t.exit_status("q"), "EXIT=0");
    let after = t.screen();
    assert!(!after.contains("1 Samples"), "the terminal is restored (alternate screen left):\n{after}");
    drop(t);

    // SIGTERM ends it cleanly too.
    let t = Tmux::start(dir.path(), "term", &args);
    t.wait_for("the first frame", |s| s.contains("1 Samples"));
    // This test's own process: its data folder is in the command line.
    let pids = Command::new("pgrep").args(["-f", "--", &format!("--data {data} --run e2e")]).output().unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout).to_string();
    let pid = pids.lines().last().expect("the flipscope process").trim().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(t.exit_status("term"), "EXIT=0");
    assert!(!t.screen().contains("1 Samples"), "restored after SIGTERM");
}

/// The Live pane on the demo model (`--model demo`, which answers in words):
/// `f` shows the mirrored image's options and gold as they were asked, `t`
/// starts empty and is labelled typed, judged only against a gold the user
/// gives, and `a` from the list keeps the focus there and says where to look.
#[test]
fn live_pane_in_tmux_shows_what_was_asked_flipped_and_typed() {
    let Some((dir, data)) = scenes(12) else { return };
    let ds = flipscope::data::load(data.to_str().unwrap()).unwrap();
    // A question whose gold has a left/right part, so the mirror changes its options.
    let s = ds.samples.iter().find(|s| s.gold_direction.is_some_and(|d| d.has_lateral()) && !s.options.is_empty()).unwrap();
    let mirrored = flipscope::data::flip::flip_labels(s, &[0]);
    let gold = s.gold_letter.unwrap();
    let (plain_gold, mirror_gold) = (&s.option(gold).unwrap().text, &mirrored.option(gold).unwrap().text);
    assert_ne!(plain_gold, mirror_gold);
    let data = data.display().to_string();
    let t = Tmux::start(dir.path(), "live", &["--model", "demo", "--data", &data, "--run", "live"]);
    t.wait_for("the model to load", |s| s.contains("1 Samples") && s.contains("model ") && !s.contains("loading"));
    let id = s.id.clone();
    t.keys(&["/"]);
    t.keys(&[&id, "Enter"]);
    t.wait_for("the search chip", |s| s.contains(&format!("search: {id}")) && s.contains("1 of 12"));
    // `a` from the list: the focus stays, the status line says where the answer is.
    t.keys(&["a"]);
    // The message says it is asking, then what the answer was; either way, where to see it.
    let screen = t.wait_for("the message", |s| {
        s.contains(&format!("asking the model about {id} (plain) · 3 shows the answer"))
            || (s.contains(&format!("{id}: ")) && s.contains("· 3 shows the answer"))
    });
    assert!(screen.contains("1 Samples"), "{screen}");
    t.keys(&["3"]);
    t.wait_for("the plain answer", |s| s.contains(&format!("{id} · plain · done")));
    t.keys(&["f"]);
    let screen = t.wait_for("the flipped answer", |s| s.contains(&format!("{id} · flipped · done")));
    assert!(screen.contains("mirrored image: options and gold as asked"), "{screen}");
    assert!(screen.contains(&format!("★{gold}. {mirror_gold}")), "the mirrored gold is starred:\n{screen}");
    assert!(!screen.contains(&format!("★{gold}. {plain_gold} ")), "not the plain one:\n{screen}");
    // ▶ marks what the verdict line reads.
    let read = screen.lines().find_map(|l| l.split(" · read as ").nth(1)).expect("a reading").split(' ').next().unwrap().to_string();
    let marked = screen.lines().find(|l| l.contains('▶')).unwrap_or_default().to_string();
    assert!(marked.contains(&read) || read == "—", "▶ on {read}:\n{screen}");
    // A typed question: the field starts empty; without a gold there is no verdict.
    t.keys(&["t"]);
    let screen = t.wait_for("the empty field", |s| s.contains(" ask: █"));
    assert!(!screen.contains(&format!(" ask: {}", s.question.chars().take(10).collect::<String>())), "{screen}");
    t.keys(&["where is it?", "Enter"]);
    let screen = t.wait_for("the typed answer", |s| s.contains("typed · where is it?") && s.contains("· done"));
    assert!(screen.contains("not judged: no gold given") && screen.contains("· not judged (no gold)"), "{screen}");
    // With a gold it is judged against it.
    t.keys(&["t", "gold=A where is it?", "Enter"]);
    let screen = t.wait_for("the judged answer", |s| s.contains("judged against your gold A") && s.contains("· done"));
    assert!(screen.contains("✓ correct") || screen.contains("✗ wrong") || screen.contains("? unparsed"), "{screen}");
    t.keys(&["q"]);
    assert_eq!(t.exit_status("live"), "EXIT=0");
}
