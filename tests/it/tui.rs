//! The workbench drawn into a TestBackend (gitui style snapshots), its pure
//! update, and a key-driven scenario on the real tiny checkpoint.

use flipscope::data::{self, Dataset};
use flipscope::engine::OptionScores;
use flipscope::jobs::JobEvent;
use flipscope::runs::Record;
use flipscope::spatial::extract::ExtractRule;
use flipscope::spatial::{classify, parse_option, ErrorKind, Verdict};
use flipscope::tui::action::Action;
use flipscope::tui::draw::draw;
use flipscope::tui::filter::{Filter, Status};
use flipscope::tui::images::ImageCache;
use flipscope::tui::keymap::{Keymap, DEFAULT, VIM};
use flipscope::tui::state::{App, EngineStatus, OpenRun, Pane, Phase};
use flipscope::tui::theme::{self, Theme};
use flipscope::tui::update::{parse_finetune_line, update, Background, Effect, Msg, Purpose, FINETUNE_LINE};
use flipscope::viz::SaliencyMap;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

pub(crate) fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut images = ImageCache::halfblocks();
    term.draw(|f| draw(f, app, &mut images)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn dataset(dir: &std::path::Path, n: usize) -> Dataset {
    data::synth::write(dir, n, &flipscope::data::synth::SynthOptions::seeded(1)).unwrap();
    data::load(dir.to_str().unwrap()).unwrap()
}

/// A run over the dataset written by hand: every third answer right, the
/// others the option after gold (so several error kinds appear), one unparsed.
fn hand_run(ds: &Dataset) -> OpenRun {
    let records: Vec<Record> = ds
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let gold = s.gold_letter.unwrap();
            let n = s.options.len();
            let gi = s.options.iter().position(|o| o.letter == gold).unwrap();
            let pred = if i % 3 == 0 { gold } else { s.options[(gi + 1) % n].letter };
            let unparsed = i == 4;
            let pd = s.option(pred).and_then(|o| o.direction);
            let kind = classify(s.gold_direction, pd);
            let lps: Vec<(String, f32)> = s
                .options
                .iter()
                .map(|o| (o.letter.to_string(), if o.letter == pred { -0.3 } else { -1.5 - o.letter as u8 as f32 * 0.01 }))
                .collect();
            Record {
                key: s.id.clone(),
                id: s.id.clone(),
                category: s.category.clone(),
                gold_letter: Some(gold.to_string()),
                gold_direction: s.gold_direction,
                predicted_letter: (!unparsed).then(|| pred.to_string()),
                predicted_direction: if unparsed { None } else { pd },
                raw_output: if unparsed { "I cannot tell".into() } else { format!("{pred}.") },
                rule: if unparsed { ExtractRule::Unparsed } else { ExtractRule::Marked },
                option_logprobs: if unparsed { vec![] } else { lps },
                verdict: match (unparsed, pred == gold) {
                    (true, _) => Verdict::Unparsed,
                    (false, true) => Verdict::Correct,
                    (false, false) => Verdict::Wrong(if kind.is_error() { kind } else { ErrorKind::Other }),
                },
                latency_ms: 12.0,
                ..Default::default()
            }
        })
        .collect();
    OpenRun::new("hand".into(), "runs/hand".into(), None, records)
}

pub(crate) fn app_with(ds: Dataset, run: OpenRun, keymap: &str) -> App {
    let mut app = App::new(ds, run, Keymap::parse(keymap, "keymap").unwrap(), Theme::parse(theme::DEFAULT, "default").unwrap());
    app.model_label = "tiny-test-model".into();
    app.data_label = "synth (test)".into();
    app.engine = EngineStatus::Ready { seconds: 0.1, layers: 2 };
    app
}

pub(crate) fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 12);
    let run = hand_run(&ds);
    (dir, app_with(ds, run, DEFAULT))
}

pub(crate) fn keys(app: &mut App, keys: &[&str]) -> Vec<Effect> {
    keys.iter().flat_map(|k| update(app, Msg::Key(k.to_string()))).collect()
}

fn act(app: &mut App, a: Action) -> Vec<Effect> {
    update(app, Msg::Action(a))
}

/// A live answer as the job manager reports it (events written by hand, so the snapshot is stable).
fn feed_live(app: &mut App) {
    let effects = keys(app, &["3", "a"]);
    assert!(matches!(&effects[..], [Effect::Submit { purpose: Purpose::Live, focused: true, .. }]), "{effects:?}");
    update(app, Msg::Submitted { purpose: Purpose::Live, id: 7 });
    let scores = OptionScores {
        labels: vec!["A".into(), "B".into(), "C".into(), "D".into()],
        token_ids: vec![1, 2, 3, 4],
        logprobs: vec![-0.4, -1.6, -2.3, -3.0],
        best: 0,
        adapt: None,
    };
    for ev in [
        JobEvent::Started { id: 7, kind: "ask" },
        JobEvent::Scores { id: 7, scores },
        JobEvent::Token { id: 7, delta: "The answer".into() },
        JobEvent::Token { id: 7, delta: " is A".into() },
    ] {
        update(app, Msg::Job(ev));
    }
}

/// A saliency result shaped like the job's (a left-to-right ramp, boxed: a bump in the box).
fn feed_saliency(app: &mut App) {
    let effects = keys(app, &["5"]);
    let Some(Effect::Submit { purpose: purpose @ Purpose::Pane { pane: Pane::Saliency, .. }, .. }) = effects.first() else {
        panic!("{effects:?}")
    };
    update(app, Msg::Submitted { purpose: purpose.clone(), id: 9 });
    let s = app.focused_sample().unwrap().clone();
    // Maps come in the original image's pixels.
    let img = flipscope::data::images::decode(&s.images[0]).unwrap();
    let (w, h) = (img.width(), img.height());
    let plain = SaliencyMap::new(w, h, (0..w * h).map(|i| (i % w) as f32).collect(), false);
    let b = s.boxes[0].clone();
    let inside = |i: u32| (b.x0..b.x1).contains(&((i % w) as f32)) && (b.y0..b.y1).contains(&((i / w) as f32));
    let boxed = SaliencyMap::new(w, h, (0..w * h).map(|i| if inside(i) { 50.0 } else { 1.0 }).collect(), false);
    update(
        app,
        Msg::Job(JobEvent::Saliency { id: 9, sample_id: s.id, target: "A".into(), plain: vec![plain], boxed: Some((vec![boxed], b)) }),
    );
    update(app, Msg::Job(JobEvent::Finished { id: 9 }));
}

fn runs_fixture(app: &mut App) {
    use flipscope::runs::RunSummary;
    let list = vec![
        RunSummary {
            dir: "runs/hand".into(),
            name: "hand".into(),
            meta: None,
            records: 12,
            right: 4,
            questions: 12,
            errors: 0,
            problem: None,
            notes: vec![],
        },
        RunSummary {
            dir: "runs/hand-flipped".into(),
            name: "hand-flipped".into(),
            meta: None,
            records: 12,
            right: 6,
            questions: 12,
            errors: 0,
            problem: None,
            notes: vec![],
        },
    ];
    update(app, Msg::RunsListed(list));
    update(app, Msg::Submitted { purpose: Purpose::Background(Background::labelled("eval hand-flipped ×12")), id: 3 });
    for ev in [
        JobEvent::Started { id: 3, kind: "eval" },
        JobEvent::Log { id: 3, line: "runs/hand-flipped: 12 to ask, 0 already done".into() },
        JobEvent::Progress { id: 3, done: 4, total: 12, elapsed_s: 8.0 },
    ] {
        update(app, Msg::Job(ev));
    }
}

#[test]
fn every_pane_at_80x24_and_160x48() {
    for (w, h) in [(80u16, 24u16), (100, 30), (160, 48)] {
        let (_d, mut app) = app();
        insta::assert_snapshot!(format!("samples_{w}x{h}"), screen(&app, w, h));
        keys(&mut app, &["j", "enter"]);
        assert_eq!(app.focus, Pane::Sample);
        insta::assert_snapshot!(format!("sample_{w}x{h}"), screen(&app, w, h));
        feed_live(&mut app);
        insta::assert_snapshot!(format!("live_{w}x{h}"), screen(&app, w, h));
        keys(&mut app, &["4"]);
        insta::assert_snapshot!(format!("confusion_{w}x{h}"), screen(&app, w, h));
        feed_saliency(&mut app);
        insta::assert_snapshot!(format!("saliency_{w}x{h}"), screen(&app, w, h));
        keys(&mut app, &["6"]);
        runs_fixture(&mut app);
        insta::assert_snapshot!(format!("runs_{w}x{h}"), screen(&app, w, h));
    }
}

#[test]
fn panes_show_what_they_promise() {
    let (_d, mut app) = app();
    keys(&mut app, &["j", "enter"]);
    let s = screen(&app, 160, 48);
    let sample = app.focused_sample().unwrap().clone();
    assert!(s.contains(&sample.question), "the question:\n{s}");
    let raw = format!("raw: {}", app.focused_record().unwrap().raw_output);
    assert!(s.contains("rule marked") && s.contains(&raw), "raw output and rule:\n{s}");
    assert!(s.contains('★') && s.contains('▶'), "gold and prediction are marked:\n{s}");
    feed_live(&mut app);
    let s = screen(&app, 160, 48);
    assert!(s.contains("The answer is A") && s.contains("running"), "streamed tokens:\n{s}");
    // Log-probs -0.4, -1.6, -2.3, -3.0, renormalised over the four options.
    assert!(["65.6%", "9.8%", "4.9%"].iter().all(|p| s.contains(p)), "option probabilities:\n{s}");
    // The ▶ line of the Live pane (the Sample pane above marks the run's record).
    let marked = |s: &str| {
        s.lines().skip_while(|l| !l.contains("┌ 3 Live answer")).find(|l| l.contains('▶')).map(str::to_string).unwrap_or_default()
    };
    assert!(marked(&s).contains("A. "), "before an answer is read, ▶ is the best score:\n{s}");
    // Once the generated answer is read and judged, ▶ marks that reading.
    let mut record = app.run.records[1].clone();
    record.predicted_letter = Some("C".into());
    update(&mut app, Msg::Job(JobEvent::Answered { id: 7, record: Box::new(record) }));
    update(&mut app, Msg::Job(JobEvent::Finished { id: 7 }));
    let s = screen(&app, 160, 48);
    assert!(marked(&s).contains("C. ") && !marked(&s).contains("A. "), "▶ follows the judged reading:\n{s}");
    let effects = keys(&mut app, &["w"]);
    assert!(matches!(&effects[..], [Effect::SaveLive { dir, .. }] if dir.ends_with("runs/hand")), "{effects:?}");
    assert!(keys(&mut app, &["w"]).is_empty(), "saved once");
    feed_saliency(&mut app);
    let s = screen(&app, 160, 48);
    assert!(s.contains("mass in box:") && s.contains("boxed (red box on the reference)"), "{s}");
    keys(&mut app, &["c", "+", "+"]);
    assert_eq!(app.saliency.alpha, 0.8);
    assert!(screen(&app, 160, 48).contains("viridis"));
}

#[test]
fn filters_chips_sort_and_views() {
    let (_d, mut app) = app();
    keys(&mut app, &["s"]);
    assert_eq!(app.samples.filters, vec![Filter::Status(Status::Correct)]);
    assert!(app.samples.visible.iter().all(|&i| i % 3 == 0 && i != 4), "{:?}", app.samples.visible);
    keys(&mut app, &["s"]);
    assert_eq!(app.samples.filters, vec![Filter::Status(Status::Wrong)], "cycling replaces the chip");
    keys(&mut app, &["s"]);
    assert_eq!(app.samples.filters, vec![Filter::Status(Status::Unparsed)], "only the statuses some sample has");
    keys(&mut app, &["s"]);
    assert!(app.samples.filters.is_empty(), "after the last value the chip goes");
    // Search as you type; esc drops it.
    keys(&mut app, &["/", "0", "0", "0", "3"]);
    assert_eq!(app.samples.visible.len(), 1);
    assert!(screen(&app, 80, 24).contains("search: 0003"));
    keys(&mut app, &["esc"]);
    assert_eq!(app.samples.visible.len(), 12);
    keys(&mut app, &["c", "e"]);
    assert_eq!(app.samples.filters.len(), 2);
    let shown = app.samples.visible.clone();
    let first = app.samples.filters[0].clone();
    // Save the view, clear, and bring it back.
    let effects = keys(&mut app, &["S", "m", "i", "n", "e", "enter"]);
    assert!(matches!(&effects[..], [Effect::SaveViews(v)] if v[0].name == "mine" && v[0].filters.len() == 2), "{effects:?}");
    keys(&mut app, &["x"]);
    assert_eq!(app.samples.visible.len(), 12);
    keys(&mut app, &["v"]);
    assert_eq!(app.samples.visible, shown);
    assert_eq!(app.samples.filters[0], first);
    keys(&mut app, &["backspace"]);
    assert_eq!(app.samples.filters.len(), 1, "backspace removes the last chip");
    // Sort by confidence: least sure first, unscored last.
    keys(&mut app, &["x", "o", "o", "o", "o"]);
    assert_eq!(app.samples.sort.name(), "confidence");
    assert_eq!(*app.samples.visible.last().unwrap(), 4, "the unparsed record has no scores");
    keys(&mut app, &["O"]);
    assert_eq!(app.samples.visible[0], 4);
}

#[test]
fn confusion_cell_opens_its_samples_as_a_chip() {
    let (_d, mut app) = app();
    keys(&mut app, &["4", "e"]);
    assert!(app.confusion.errors_only);
    let m = app.confusion.matrix.clone().unwrap();
    // Walk to the first off-diagonal cell with samples.
    let (gi, pj) = (0..m.gold_labels.len())
        .flat_map(|g| (0..m.predicted_labels.len()).map(move |p| (g, p)))
        .find(|&(g, p)| m.counts[g][p] > 0 && m.cell_kind(g, p).is_error())
        .unwrap();
    for _ in 0..gi {
        keys(&mut app, &["down"]);
    }
    for _ in 0..pj {
        keys(&mut app, &["right"]);
    }
    keys(&mut app, &["enter"]);
    assert_eq!(app.focus, Pane::Samples);
    let name = |l: &str| flipscope::spatial::Direction::from_name(l);
    let chip = Filter::Cell { gold: name(&m.gold_labels[gi]).unwrap(), predicted: name(&m.predicted_labels[pj]) };
    assert_eq!(app.samples.filters, vec![chip.clone()]);
    assert_eq!(app.samples.visible.len(), m.counts[gi][pj] as usize);
    assert!(screen(&app, 80, 24).contains(&chip.label()), "the chip is shown");
    keys(&mut app, &["backspace"]);
    assert_eq!(app.samples.visible.len(), 12, "and removable");
    // Per category: the next category narrows the matrix and the chip carries it.
    keys(&mut app, &["4", "c"]);
    let cat = app.confusion.category.clone().unwrap();
    keys(&mut app, &["enter"]);
    assert!(app.samples.filters.contains(&Filter::Category(cat.clone())), "{:?}", app.samples.filters);
    assert!(app.samples.visible.iter().all(|&i| app.dataset.samples[i].category == cat));
}

#[test]
fn help_is_generated_from_the_keymap_and_q_quits() {
    for keymap in [Keymap::parse(DEFAULT, "km").unwrap(), Keymap::vim().unwrap()] {
        let (_d, mut app) = app();
        app.keymap = keymap;
        keys(&mut app, &["?"]);
        let s = screen(&app, 120, 60);
        for b in &app.keymap.modes[&flipscope::tui::keymap::Mode::Samples] {
            assert!(s.contains(&b.desc), "help lists `{}`:\n{s}", b.desc);
        }
        keys(&mut app, &["?"]);
        assert!(!app.show_help);
        keys(&mut app, &["q"]);
        assert!(app.quit);
    }
}

#[test]
fn navigation_clamps_and_resets_the_frame() {
    let (_d, mut app) = app();
    keys(&mut app, &["up"]);
    assert_eq!(app.samples.cursor, 0);
    keys(&mut app, &["end"]);
    assert_eq!(app.samples.cursor, 11);
    keys(&mut app, &["down"]);
    assert_eq!(app.samples.cursor, 11);
    keys(&mut app, &["pageup"]);
    assert_eq!(app.samples.cursor, 1);
    act(&mut app, Action::NextPane);
    assert_eq!(app.focus, Pane::Sample);
    act(&mut app, Action::PrevPane);
    act(&mut app, Action::PrevPane);
    assert_eq!(app.focus, Pane::Causal, "the last pane, wrapping around");
}

#[test]
fn keymap_files_fail_each_with_its_own_message() {
    let b = |mode: &str, on: &str, run: &str| format!("[[{mode}]]\non = \"{on}\"\nrun = \"{run}\"\ndesc = \"d\"\n");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{}\n{}", b("samples", "j", "down"), b("samples", "x", "explode")),
            "line 8: [[samples]] on = \"x\": unknown action `explode`",
        ),
        (b("samples", "ctrl-", "down"), "line 2: [[samples]] on = \"ctrl-\": not a key"),
        (b("samples", "bigkey", "down"), "on = \"bigkey\": not a key"),
        (format!("{}\n{}", b("live", "w", "save_answer"), b("live", "w", "quit")), "line 7: [[live]] on = \"w\" is bound twice"),
        (b("sidebar", "j", "down"), "unknown field `sidebar`"),
        ("[[samples]]\non = \"j\"\nrun = \"down\"\n".into(), "missing field `desc`"),
        ("[[samples]]\non = \"j\"\nrun = \"down\"\ndesc = \"d\"\ncolor = \"red\"\n".into(), "unknown field `color`"),
        ("[[samples]\non = \"j\"".into(), "invalid keymap"),
        ("samples = 3\n".into(), "invalid type"),
    ];
    for (text, want) in cases {
        let err = format!("{:#}", Keymap::parse(&text, "user.toml").unwrap_err());
        assert!(err.contains("user.toml") && err.contains(want), "{err:?} should contain {want:?}");
    }
    let err = format!("{:#}", Keymap::resolve(Some(("keymap = \"emacs\"\n", "user.toml".into()))).unwrap_err());
    assert!(err.contains("user.toml: line 1: keymap = \"emacs\": not \"default\" or \"vim\""), "{err}");
    // A user file layers over the base it names.
    let km = Keymap::resolve(Some((&format!("keymap = \"vim\"\n{}", b("samples", "n", "down")), "user.toml".into()))).unwrap();
    assert_eq!(km.lookup(flipscope::tui::keymap::Mode::Samples, "n"), Some(Action::Down));
    assert_eq!(km.lookup(flipscope::tui::keymap::Mode::Samples, "G"), Some(Action::Bottom), "the vim map's bindings stay");
    assert_eq!(km.lookup(flipscope::tui::keymap::Mode::Samples, "j"), Some(Action::Down), "and the default's under them");
    // The vim file is an overlay: only bindings the default lacks, each a key the default leaves free there.
    let (default, overlay) = (Keymap::parse(DEFAULT, "d").unwrap(), Keymap::parse(VIM, "v").unwrap());
    for (mode, binds) in &overlay.modes {
        for b in binds {
            assert_eq!(default.lookup(*mode, &b.on), None, "[[{mode}]] {} is already the default's", b.on);
        }
    }
    let vim = Keymap::vim().unwrap();
    let count = |k: &Keymap| k.modes.values().map(Vec::len).sum::<usize>();
    assert_eq!(count(&vim), count(&default) + count(&overlay));
    assert_eq!(Keymap::resolve(None).unwrap().lookup(flipscope::tui::keymap::Mode::Global, "q"), Some(Action::Quit));
}

/// Pumps effects through the runtime and job events into `update` until `done` holds.
pub(crate) fn drive(
    app: &mut App,
    rt: &mut flipscope::tui::runtime::Runtime,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>,
    first: Vec<Effect>,
    done: impl Fn(&App) -> bool,
) {
    let mut queue: std::collections::VecDeque<Msg> = first.into_iter().flat_map(|e| rt.execute(e)).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        while let Some(m) = queue.pop_front() {
            for e in update(app, m) {
                queue.extend(rt.execute(e));
            }
        }
        if done(app) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out; message: {:?}", app.message);
        if let Some(msg) = rx.blocking_recv() {
            queue.push_back(msg);
        }
    }
}

/// The scenario from the issue, on the real tiny checkpoint: rerun the demo
/// data, filter to wrong answers, open a confusion cell, the sample, then its saliency.
#[test]
fn scenario_filter_confusion_cell_sample_saliency_on_the_real_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 10);
    let runs = dir.path().join("runs");
    let run = flipscope::tui::runtime::initial_run(&runs, None, "scenario").unwrap();
    assert!(run.records.is_empty());
    let mut app = app_with(ds, run, DEFAULT);
    app.engine = EngineStatus::Loading;
    let model = crate::common::parity::case_dir("flat_tied_odd").join("model");
    let (mut rt, mut rx) = flipscope::tui::runtime::Runtime::start(
        model,
        None,
        flipscope::engine::Placement::cpu(),
        dir.path().join("data").display().to_string(),
        ImageCache::halfblocks(),
    )
    .unwrap();
    rt.set_runs_root(runs.clone());
    rt.set_views_file(dir.path().join("views.toml"));

    // Rerun everything (plain) from the Runs pane; the finished run opens by itself.
    let effects = keys(&mut app, &["6", "r"]);
    drive(&mut app, &mut rt, &mut rx, effects, |a| !a.run.records.is_empty());
    assert_eq!(app.run.records.len(), 10);
    assert!(runs.join("scenario-plain/records.jsonl").is_file());
    assert!(matches!(app.engine, EngineStatus::Ready { layers: 2, .. }));
    let s = screen(&app, 160, 48);
    assert!(s.contains("scenario-plain") && s.contains("10/10 done"), "{s}");

    // Filter: wrong answers only.
    keys(&mut app, &["1", "s", "s"]);
    let wrong = app.samples.visible.len();
    assert!(wrong > 0 && wrong < 10, "the random model gets some wrong: {wrong}");
    // The confusion view: the cursor's cell, enter.
    keys(&mut app, &["4", "e"]);
    let m = app.confusion.matrix.clone().unwrap();
    let (g, p) = (0..m.gold_labels.len())
        .flat_map(|g| (0..m.predicted_labels.len()).map(move |p| (g, p)))
        .find(|&(g, p)| m.counts[g][p] > 0 && m.cell_kind(g, p).is_error())
        .unwrap();
    app.confusion.row = g;
    app.confusion.col = p;
    keys(&mut app, &["enter"]);
    assert_eq!(app.samples.visible.len(), m.counts[g][p] as usize);
    assert!(app.samples.filters.iter().any(|f| matches!(f, Filter::Cell { .. })));
    // The sample, then its saliency from the engine.
    keys(&mut app, &["enter"]);
    let id = app.focused_sample().unwrap().id.clone();
    assert!(!app.focused_record().unwrap().is_correct());
    let effects = keys(&mut app, &["5"]);
    assert!(matches!(&effects[..], [Effect::Submit { purpose: Purpose::Pane { pane: Pane::Saliency, .. }, .. }]), "{effects:?}");
    drive(&mut app, &mut rt, &mut rx, effects, |a| a.saliency.work.result.is_some() && !a.saliency.work.phase.busy());
    let r = app.saliency.work.result.clone().unwrap();
    assert_eq!(r.sample_id, id);
    assert!(r.boxed.is_some(), "synthetic scenes carry a reference box");
    let s = screen(&app, 160, 48);
    assert!(s.contains("mass in box:") && s.contains(&format!("explains {}", r.target)), "{s}");
    // Attention mode, one layer at a time.
    let effects = keys(&mut app, &["a", "right"]);
    drive(&mut app, &mut rt, &mut rx, effects, |a| a.saliency.work.result.as_ref().is_some_and(|r| r.attention.map(|x| x.0) == Some(1)));
    assert!(screen(&app, 160, 48).contains("layer 1: "), "the attention share line");
    // A live answer on the same sample streams and can be saved into the run.
    let effects = keys(&mut app, &["3", "a"]);
    drive(&mut app, &mut rt, &mut rx, effects, |a| a.live.record.is_some() && !a.live.phase.busy());
    let effects = keys(&mut app, &["w"]);
    drive(&mut app, &mut rt, &mut rx, effects, |a| a.message.as_deref().is_some_and(|m| m.contains("live.jsonl")));
    let saved = std::fs::read_to_string(runs.join("scenario-plain/live.jsonl")).unwrap();
    assert!(saved.contains(&id) && saved.contains("\"asked\":\"plain\""), "{saved}");

    // The Causal pane on the same sample: decision curve, knockout and patching from the engine.
    let effects = keys(&mut app, &["7"]);
    drive(&mut app, &mut rt, &mut rx, effects, |a| {
        !a.causal.work.phase.busy() && a.causal.work.result.as_ref().is_some_and(|r| r.overview.patch.is_some())
    });
    assert_eq!(app.causal.work.phase, Phase::Done);
    let o = app.causal.work.result.clone().unwrap().overview;
    assert_eq!(o.sample_id, id);
    let lens = o.lens.clone().unwrap().unwrap();
    assert_eq!(lens.curve.len(), 2, "one row per layer");
    assert!(lens.curve.iter().all(|row| row.len() == o.labels.len() && row.iter().all(|p| (0.0..=1.0).contains(p))));
    let k = o.knockout.clone().unwrap().unwrap();
    assert_eq!((k.delta.len(), k.edges.len()), (2, 4), "two window starts, box->last included (the scene has a reference box)");
    let s = screen(&app, 160, 48);
    assert!(s.contains("knockout: Δ log p(") && s.contains("patching"), "{s}");
    // The batch over the filter (the cell's samples) into the open run's causal rows.
    let n = app.samples.visible.len();
    let effects = keys(&mut app, &["B"]);
    let batch_done = |a: &App| a.jobs.iter().any(|j| j.label.starts_with("causal ×") && j.phase == Phase::Done);
    drive(&mut app, &mut rt, &mut rx, effects, batch_done);
    for experiment in ["lens", "knockout", "patch"] {
        let rows = std::fs::read_to_string(runs.join(format!("scenario-plain/causal/{experiment}.jsonl"))).unwrap();
        assert_eq!(rows.lines().count(), n, "{experiment}: one row per sample of the filter\n{rows}");
    }
    let job = app.jobs.iter().find(|j| j.label.starts_with("causal ×")).unwrap();
    assert!(job.log.iter().any(|l| l.starts_with("logit lens (")), "report's summary in the job log: {:?}", job.log);
}

#[test]
fn directions_in_hand_run_are_real() {
    // The hand-written run uses directions the parser knows, so the confusion view has them.
    let (_d, app) = app();
    assert!(app.run.records.iter().all(|r| r.gold_direction.is_some()));
}

/// A finetune as the job manager reports it: two steps, then done.
fn feed_finetune(app: &mut App, id: u64) {
    let out = std::path::PathBuf::from("runs/finetunes/ft-1");
    update(
        app,
        Msg::Submitted { purpose: Purpose::Background(Background { train_out: Some(out), ..Background::labelled("train 2 steps") }), id },
    );
    update(app, Msg::Job(JobEvent::Started { id, kind: "train" }));
    for (step, loss) in [(1usize, 1.25f64), (2, 0.75)] {
        let metrics = flipscope::train::metrics::StepMetrics {
            step,
            total_steps: 2,
            epoch: step as f64 / 2.0,
            loss,
            lr: 1e-4,
            grad_norm: 0.5,
            tokens_per_s: 900.0,
            answer_tokens: 8,
            elapsed_s: step as f64,
            eta_s: (2 - step) as f64,
            peak_mem_bytes: Some(1 << 30),
            mem_kind: "rss".into(),
            ..Default::default()
        };
        update(app, Msg::Job(JobEvent::Progress { id, done: step, total: 2, elapsed_s: step as f64 }));
        update(app, Msg::Job(JobEvent::TrainStep { id, metrics: Box::new(metrics) }));
    }
}

#[test]
fn finetune_settings_line_parses_and_rejects_bad_values() {
    // The line is `flipscope train`'s own flags; its defaults are the CLI's.
    let f = parse_finetune_line(FINETUNE_LINE).unwrap();
    assert_eq!((f.data.as_str(), f.max_steps, f.batch, f.flip_augment), ("current", Some(100), 4, false));
    assert_eq!(f.lora, Some(flipscope::engine::LoraConfig::parse("r=16,alpha=32,dropout=0.05").unwrap()));
    let defaults = flipscope::train::TrainConfig::default();
    assert_eq!((f.epochs, f.warmup_ratio, f.seed, f.replay), (defaults.epochs, defaults.warmup_ratio, defaults.seed, defaults.replay));
    let g =
        parse_finetune_line("--data synth:50 --lora r=4,alpha=8 --max-steps 20 --lr 5e-4 --batch 2 --flip-augment --replay 0.5").unwrap();
    assert_eq!((g.data.as_str(), g.max_steps, g.batch, g.flip_augment, g.replay, g.lr), ("synth:50", Some(20), 2, true, 0.5, 5e-4));
    assert!(parse_finetune_line("--data x --max-steps many").unwrap_err().contains("'many' for '--max-steps"));
    assert!(parse_finetune_line("--data x --batch 0").unwrap_err().contains("at least 1"));
    assert!(parse_finetune_line("--data x --lora r=0").unwrap_err().contains("r must be at least 1"));
    assert!(parse_finetune_line("--data x --color red").unwrap_err().contains("unexpected argument '--color'"));
    assert!(parse_finetune_line("--lr 1").unwrap_err().contains("--data"), "data is required");
}

#[test]
fn finetune_from_runs_then_eval_the_adapter_and_compare_in_one_key() {
    let (_d, mut app) = app();
    keys(&mut app, &["6"]);
    assert!(keys(&mut app, &["t"]).is_empty());
    let input = app.input.clone().expect("the settings line opens");
    // A run on this data is open: the line offers the data's train split, and says why.
    assert!(input.text.starts_with("--data current#split=train --lora r=16"), "{}", input.text);
    assert!(app.message.as_deref().unwrap_or_default().contains("evaluates on this data"), "{:?}", app.message);
    // A bad edit keeps the line open and says why.
    app.input.as_mut().unwrap().text = "--data current --max-steps 0".into();
    assert!(keys(&mut app, &["enter"]).is_empty());
    assert!(app.message.as_deref().unwrap_or_default().contains("at least 1"));
    assert!(app.input.is_some(), "the line stays open");
    app.input.as_mut().unwrap().text =
        "--data current --lora r=4,alpha=8 --max-steps 2 --lr 1e-3 --batch 2 --flip-augment --replay 0.5".into();
    let effects = keys(&mut app, &["enter"]);
    let lora = flipscope::engine::LoraConfig::parse("r=4,alpha=8").unwrap();
    assert!(app.message.as_deref().unwrap_or_default().contains("training on the questions you evaluate on"), "{:?}", app.message);
    assert!(
        matches!(&effects[..], [Effect::Finetune(f)] if f.max_steps == Some(2) && f.flip_augment && f.lora.as_ref() == Some(&lora)),
        "{effects:?}"
    );
    // No finished finetune yet: `a` says so.
    assert!(keys(&mut app, &["a"]).is_empty());
    assert!(app.message.as_deref().unwrap_or_default().contains("no finished finetune"));
    feed_finetune(&mut app, 7);
    let job = app.jobs.iter().find(|j| j.id == 7).unwrap();
    assert_eq!(job.losses, vec![(1.0, 1.25), (2.0, 0.75)]);
    let s = screen(&app, 160, 48);
    assert!(s.contains("step 2/2") && s.contains("loss 0.7500"), "metrics line:\n{s}");
    assert!(s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)), "loss curve drawn (braille dots):\n{s}");
    insta::assert_snapshot!("runs_finetune_160x48", s);
    update(&mut app, Msg::Job(JobEvent::Finished { id: 7 }));
    assert!(app.message.as_deref().unwrap_or_default().contains("a evaluates it"));
    let effects = keys(&mut app, &["a"]);
    let Some(Effect::EvalAdapter { samples, adapter, run, compare_with }) = effects.first() else { panic!("{effects:?}") };
    assert_eq!(samples.len(), app.samples.visible.len());
    assert_eq!(adapter, &std::path::PathBuf::from("runs/finetunes/ft-1"));
    assert!(run.ends_with("-ft-1"), "named after the finetune folder: {run}");
    assert_eq!(compare_with.as_ref(), Some(&app.run.dir));
    // When that eval ends, the comparison with the open run follows by itself.
    let run_dir = std::path::PathBuf::from("runs").join(run);
    let base = app.run.dir.clone();
    update(
        &mut app,
        Msg::Submitted {
            purpose: Purpose::Background(Background {
                run_dir: Some(run_dir.clone()),
                compare_with: Some(base.clone()),
                ..Background::labelled("eval")
            }),
            id: 8,
        },
    );
    let effects = update(&mut app, Msg::Job(JobEvent::Finished { id: 8 }));
    assert!(effects.iter().any(|e| matches!(e, Effect::Compare { a, b } if *a == base && *b == run_dir)), "{effects:?}");
}

/// A run of sampled answers: the focused question's line shows how they split.
#[test]
fn the_sample_pane_shows_how_sampled_answers_split() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 3);
    let s = ds.samples[0].clone();
    let letters: Vec<char> = s.options.iter().map(|o| o.letter).collect();
    let picks = [Some(letters[0]), Some(letters[1]), Some(letters[0]), None, Some(letters[0])];
    let records: Vec<Record> = picks
        .iter()
        .enumerate()
        .map(|(j, p)| Record {
            key: format!("{}#s{j}", s.id),
            id: s.id.clone(),
            category: s.category.clone(),
            sample: Some(j),
            predicted_letter: p.map(|l| l.to_string()),
            verdict: match p {
                None => Verdict::Unparsed,
                Some(l) if Some(*l) == s.gold_letter => Verdict::Correct,
                Some(_) => Verdict::Wrong(ErrorKind::Other),
            },
            rule: if p.is_some() { ExtractRule::Marked } else { ExtractRule::Unparsed },
            ..Default::default()
        })
        .collect();
    let app = app_with(ds, OpenRun::new("sampled".into(), "runs/sampled".into(), None, records), DEFAULT);
    let (first, second) = (&s.options[0].text, &s.options[1].text);
    let want = format!("samples: {first} 3/5 · {second} 1/5 · unparsed 1/5");
    let text = screen(&app, 160, 40);
    assert!(text.contains(&want), "{want}\n{text}");
}

#[test]
fn finetune_line_takes_grpo_and_its_options() {
    use flipscope::train::grpo::{LossKind, Method};
    let g =
        parse_finetune_line("--data current method=grpo group=4 --beta 0.04 loss=dr_grpo --reward accuracy=1 --lora r=4,alpha=8").unwrap();
    assert_eq!((g.grpo.method, g.grpo.group, g.grpo.beta, g.grpo.loss), (Method::Grpo, 4, 0.04, LossKind::DrGrpo));
    assert_eq!(g.grpo.reward, flipscope::train::grpo::RewardWeights { accuracy: 1.0, format: 0.0 });
    assert_eq!(g.lora.as_ref().map(|l| l.r), Some(4), "r=4 after --lora stays its value");
    let h = parse_finetune_line("--data x --method grpo --max-completion-tokens 64 --epsilon-high 0.28 --iterations 2").unwrap();
    assert_eq!((h.grpo.max_completion_tokens, h.grpo.epsilon_high(), h.grpo.iterations), (64, 0.28, 2));
    assert!(parse_finetune_line("--data x method=ppo").unwrap_err().contains("'ppo'"));
    assert!(parse_finetune_line("--data x --method grpo --reward speed=1").unwrap_err().contains("unknown option `speed`"));
    assert_eq!(parse_finetune_line("--data x").unwrap().grpo.method, Method::Sft, "sft by default");
}

/// A GRPO finetune draws its mean reward and rollout accuracy, and its
/// metrics line carries the GRPO figures.
#[test]
fn a_grpo_finetune_draws_reward_curves_and_its_figures() {
    let (_d, mut app) = app();
    keys(&mut app, &["6"]);
    let id = 9;
    update(
        &mut app,
        Msg::Submitted {
            purpose: Purpose::Background(Background { train_out: Some("runs/finetunes/g".into()), ..Background::labelled("grpo") }),
            id,
        },
    );
    update(&mut app, Msg::Job(JobEvent::Started { id, kind: "train" }));
    for (step, reward) in [(1usize, 0.2f64), (2, 0.35), (3, 0.6)] {
        let metrics = flipscope::train::metrics::StepMetrics {
            step,
            total_steps: 3,
            loss: -0.01,
            grpo: Some(flipscope::train::grpo::GrpoStats {
                reward_mean: reward,
                reward_std: 0.1,
                rollout_accuracy: reward - 0.1,
                zero_spread: 0.25,
                kl: 0.0123,
                clip_fraction: 0.05,
                completion_tokens_mean: 7.5,
                entropy: 1.5,
                ..Default::default()
            }),
            ..Default::default()
        };
        update(&mut app, Msg::Job(JobEvent::TrainStep { id, metrics: Box::new(metrics) }));
    }
    let job = app.jobs.iter().find(|j| j.id == id).unwrap();
    assert_eq!(job.rewards, [(1.0, 0.2), (2.0, 0.35), (3.0, 0.6)]);
    let s = screen(&app, 200, 48);
    assert!(s.contains("reward 0.600±0.100") && s.contains("zero-spread") && s.contains("kl 0.0123"), "{s}");
    assert!(s.contains("reward") && s.contains("rollout acc"), "the chart's legend names both curves:\n{s}");
    assert!(s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)), "curves drawn:\n{s}");
}

/// What the Live pane draws is what was asked and judged: a mirrored
/// sample's options and gold, ▶ on the reading, and a line when the scores
/// favour another option.
#[test]
fn live_pane_draws_the_sample_as_asked_and_what_was_judged() {
    let (_d, mut app) = app();
    let s = app.dataset.samples.iter().find(|s| s.gold_direction.is_some_and(|d| d.has_lateral())).unwrap().clone();
    let at = app.samples.visible.iter().position(|&i| app.dataset.samples[i].id == s.id).unwrap();
    app.samples.cursor = at;
    keys(&mut app, &["3", "f"]);
    update(&mut app, Msg::Submitted { purpose: Purpose::Live, id: 9 });
    let asked = flipscope::data::flip::flip_labels(&s, &[100]);
    let gold = asked.gold_letter.unwrap();
    // The scores favour the first option; the answer reads as the gold (mirrored) one.
    let labels: Vec<String> = asked.options.iter().map(|o| o.letter.to_string()).collect();
    let scores = OptionScores {
        token_ids: (1..=labels.len() as i64).collect(),
        logprobs: labels.iter().enumerate().map(|(i, _)| if i == 0 { -0.1 } else { -3.0 }).collect(),
        labels,
        best: 0,
        adapt: None,
    };
    let text = asked.option(gold).unwrap().text.clone();
    let record = Record {
        key: s.id.clone(),
        id: s.id.clone(),
        gold_letter: Some(gold.to_string()),
        gold_direction: asked.gold_direction,
        predicted_letter: Some(gold.to_string()),
        predicted_direction: asked.gold_direction,
        raw_output: text.clone(),
        rule: ExtractRule::OptionText,
        verdict: Verdict::Correct,
        ..Default::default()
    };
    for ev in [
        JobEvent::Started { id: 9, kind: "ask" },
        JobEvent::Asked { id: 9, sample: Box::new(asked.clone()) },
        JobEvent::Scores { id: 9, scores },
        JobEvent::Token { id: 9, delta: text.clone() },
        JobEvent::Answered { id: 9, record: Box::new(record) },
        JobEvent::Finished { id: 9 },
    ] {
        update(&mut app, Msg::Job(ev));
    }
    for (w, h) in [(100u16, 30u16), (160, 48)] {
        let screen = screen(&app, w, h);
        assert!(screen.contains("mirrored image: options and gold as asked"), "{screen}");
        assert!(screen.contains(&format!("▶★{gold}. {text}")), "▶ and ★ on the mirrored gold as asked:\n{screen}");
        let plain = &s.option(gold).unwrap().text;
        assert!(!screen.contains(&format!("★{gold}. {plain} ")), "not the plain option:\n{screen}");
        assert!(screen.contains(&format!("scores favour {}", asked.options[0].letter)), "the disagreement is said:\n{screen}");
        assert!(screen.contains(&format!("✓ correct · read as {}", asked.gold_direction.unwrap())), "{screen}");
    }
    insta::assert_snapshot!("live_flipped_100x30", screen(&app, 100, 30));
}

/// Nothing cut, nothing stale, at 100x30 and 160x48.
#[test]
fn nothing_cut_nothing_stale() {
    // A key with nothing to act on says why.
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 6);
    let mut empty = app_with(ds, OpenRun::new("fresh".into(), "runs/fresh".into(), None, vec![]), DEFAULT);
    keys(&mut empty, &["e"]);
    assert!(empty.message.as_deref().unwrap_or_default().starts_with("no run yet"), "{:?}", empty.message);
    keys(&mut empty, &["j"]);
    assert_eq!(empty.message, None, "the next key clears a message that answered the last one");
    // At 80 columns the status line takes a second row rather than cut the run or the jobs.
    let (_d, mut busy) = app();
    feed_live(&mut busy);
    let s = screen(&busy, 80, 24);
    assert!(s.contains("run hand 33.3%") && s.contains("1 job running") && s.contains("model tiny-test-model"), "{s}");
    for (w, h) in [(100u16, 30u16), (160, 48)] {
        let (_d, mut app) = app();
        // The longest kind, whole in the list.
        let mut records = app.run.records.clone();
        records[1].verdict = Verdict::Wrong(ErrorKind::HorizontalFlip);
        update(&mut app, Msg::RunOpened(Box::new(OpenRun::new("hand".into(), "runs/hand".into(), None, records))));
        let s = screen(&app, w, h);
        // The list keeps its prediction and verdict; the status line names the run.
        assert!(s.contains("predicted") && s.contains("verdict") && s.contains("run hand"), "{w}x{h}:\n{s}");
        assert!(s.contains("horizontal flip"), "{w}x{h}:\n{s}");
        // Confusion: kinds in words, whole.
        keys(&mut app, &["4"]);
        let s = screen(&app, w, h);
        assert!(s.contains("horizontal flip") && !s.contains("horizontal_f…") && !s.contains('…'), "{w}x{h}:\n{s}");
        // Runs & jobs: every hint whole, the log scrolls.
        keys(&mut app, &["6"]);
        runs_fixture(&mut app);
        for i in 0..60 {
            update(&mut app, Msg::Job(JobEvent::Log { id: 3, line: format!("log line {i}") }));
        }
        let s = screen(&app, w, h);
        assert!(s.contains("x cancel") && !s.contains("t fi…"), "{w}x{h}:\n{s}");
        assert!(s.contains("log line 59") && s.contains("of 61"), "{w}x{h}:\n{s}");
        keys(&mut app, &["right", "K", "K"]);
        let s = screen(&app, w, h);
        assert!(s.contains("log line 57") && !s.contains("log line 59"), "K scrolls back:\n{s}");
        // The finetune line keeps what is typed in view.
        keys(&mut app, &["t"]);
        app.input.as_mut().unwrap().text.push_str(" --seed 12345 --epochs 3 --warmup-ratio 0.1 --tail-marker-xyz");
        let s = screen(&app, w, h);
        assert!(s.contains("--tail-marker-xyz█"), "{w}x{h}:\n{s}");
        keys(&mut app, &["esc"]);
        // The help wraps and stops at its end.
        keys(&mut app, &["?"]);
        for _ in 0..200 {
            keys(&mut app, &["down"]);
        }
        let s = screen(&app, w, h);
        assert!(s.contains(" · end") && !s.contains('…'), "{w}x{h}:\n{s}");
        assert!(s.contains("Delete a character"), "the last binding is in view:\n{s}");
    }
}

/// `c` on a plain run and its mirrored run shows flip consistency beside its
/// chance level, and warns when a model that always answers C only agrees with itself.
#[test]
fn comparing_a_run_with_its_mirror_shows_the_chance_level() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, variant: &str, suffix: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let meta = serde_json::json!({
            "name": name, "model": "m", "model_fingerprint": "f", "adapter": null, "dataset": "d", "dataset_hash": "h",
            "prompt": "p", "decoding": "score", "variant": variant, "circular": false, "flipscope_version": "0",
            "device": "cpu", "started": "0", "finished": null
        });
        std::fs::write(d.join("run.json"), meta.to_string()).unwrap();
        let lines: Vec<String> = (0..20)
            .map(|i| {
                let r = Record {
                    key: format!("q{i}{suffix}"),
                    id: format!("q{i}{suffix}"),
                    category: "cam".into(),
                    gold_letter: Some(["A", "B", "C", "D"][i % 4].into()),
                    predicted_letter: Some("C".into()),
                    rule: ExtractRule::Scored,
                    verdict: if i % 4 == 2 { Verdict::Correct } else { Verdict::Wrong(ErrorKind::Other) },
                    ..Default::default()
                };
                serde_json::to_string(&r).unwrap()
            })
            .collect();
        std::fs::write(d.join("records.jsonl"), lines.join("\n") + "\n").unwrap();
        d
    };
    let (plain, mirror) = (write("plain", "plain", ""), write("mirror", "flipped", "~flip"));
    let c = flipscope::tui::runtime::compare(&plain, &mirror).unwrap();
    let overall = c.flip.last().unwrap();
    assert_eq!((overall.consistent, overall.total, overall.chance.chance), (20, 20, 1.0));
    assert!(c.warnings.iter().any(|w| w.message.contains("20/20 (100.00%) is inside the chance level 100.00%")), "{:?}", c.warnings);
    let (_d, mut app) = app();
    keys(&mut app, &["6"]);
    update(&mut app, Msg::Compared(c));
    for (w, h) in [(100u16, 30u16), (160, 48)] {
        let s = screen(&app, w, h);
        assert!(s.contains("flip consistency") && s.contains("chance 100.0%"), "{w}x{h}:\n{s}");
        assert!(s.contains("⚠ flip_consistency_at_chance"), "{w}x{h}:\n{s}");
    }
}

/// A run made on other data with the same sample ids is not shown beside
/// these samples: its verdicts were judged against another gold.
#[test]
fn a_run_on_other_data_is_not_opened() {
    let (_d, mut app) = app();
    let mut records = app.run.records.clone();
    let other = records.iter().position(|r| r.gold_direction.is_some()).unwrap();
    records[other].gold_direction = records[other].gold_direction.map(|d| d.mirrored().vertically_flipped().depth_flipped());
    records[other].gold_letter = Some("Z".into());
    let foreign = OpenRun::new("elsewhere".into(), "runs/elsewhere".into(), None, records);
    assert_eq!(foreign.foreign_records(&app.dataset), 1);
    update(&mut app, Msg::RunOpened(Box::new(foreign)));
    assert_eq!(app.run.name, "hand", "the open run stays");
    assert!(app.message.as_deref().unwrap_or_default().contains("run elsewhere was not opened: 1 of its answers"), "{:?}", app.message);
    let same = OpenRun::new("again".into(), "runs/again".into(), None, app.run.records.clone());
    update(&mut app, Msg::RunOpened(Box::new(same)));
    assert_eq!(app.run.name, "again");
}

/// A typed gold is the gold as asked: on the mirrored image `gold=left`
/// means left in the mirror, so the sample sent is mirrored back first.
#[test]
fn a_typed_gold_is_read_in_the_frame_it_was_asked_in() {
    let (_d, mut app) = app();
    keys(&mut app, &["3", "f"]);
    let ask = |app: &mut App, text: &str| {
        keys(app, &["t"]);
        app.input.as_mut().unwrap().text = text.into();
        let effects = keys(app, &["enter"]);
        let Some(Effect::Submit { request, .. }) = effects.first() else { panic!("{effects:?}") };
        let flipscope::jobs::JobRequest::Ask { sample, question, .. } = request.as_ref() else { panic!("{request:?}") };
        (sample.clone(), question.clone())
    };
    let (sample, question) = ask(&mut app, "gold=left where is it?");
    assert_eq!(question.as_deref(), Some("where is it?"));
    assert_eq!(sample.gold_direction, parse_option("right"), "mirrored back: the flipped variant mirrors it to left");
    let (sample, _) = ask(&mut app, "where is it?");
    assert_eq!((sample.gold_letter, sample.gold_direction, sample.gold_text.clone()), (None, None, None), "no gold, no verdict");
    keys(&mut app, &["a"]);
    let (sample, _) = ask(&mut app, "gold=left where is it?");
    assert_eq!(sample.gold_direction, parse_option("left"), "asked plain, as typed");
    keys(&mut app, &["t"]);
    app.input.as_mut().unwrap().text = "gold=Q where?".into();
    assert!(keys(&mut app, &["enter"]).is_empty());
    assert!(app.message.as_deref().unwrap_or_default().contains("gold=Q: this sample's options are ABCD"), "{:?}", app.message);
    keys(&mut app, &["t"]);
    app.input.as_mut().unwrap().text = "gold=sideways where?".into();
    assert!(keys(&mut app, &["enter"]).is_empty());
    assert!(app.message.as_deref().unwrap_or_default().contains("gold=sideways: not an option letter or a direction"), "{:?}", app.message);
}
