//! The Causal pane: snapshots of a hand-made overview (so they are stable),
//! its latest-wins requests, parts arriving one by one, the layer scroll and
//! the batch key.

use crate::tui::{app, app_with, dataset, keys, screen};
use flipscope::causal::overview::{CausalOverview, DecisionCurve, KnockoutTable, PatchMap};
use flipscope::causal::{AnswerForm, EdgeGroup, PositionGroup};
use flipscope::jobs::{JobEvent, JobRequest};
use flipscope::tui::keymap::DEFAULT;
use flipscope::tui::state::{App, EngineStatus, OpenRun, Pane, Phase};
use flipscope::tui::update::{update, Effect, Msg, Purpose};

/// An overview shaped like the engine's for `app`'s focused sample: the
/// model answers B where A is gold, decided half way up; knockout hurts
/// more the later the window; patching moves from the image to the text.
fn overview(app: &App, layers: usize) -> CausalOverview {
    let s = app.focused_sample().unwrap();
    let labels: Vec<String> = s.options.iter().map(|o| o.letter.to_string()).collect();
    let n = labels.len();
    let x = |l: usize| l as f64 / (layers - 1).max(1) as f64;
    let curve = (0..layers)
        .map(|l| {
            let (a, b) = (0.3 + 0.2 * (1.0 - x(l)), 0.1 + 0.6 * x(l));
            let rest = (1.0 - a - b) / (n - 2) as f64;
            (0..n).map(|c| [a, b].get(c).copied().unwrap_or(rest) as f32).collect()
        })
        .collect();
    let edges = EdgeGroup::ALL.to_vec();
    let delta = (0..layers).map(|w| (0..edges.len()).map(|e| -0.25 * (w + 1) as f64 * (e + 1) as f64 / 4.0).collect()).collect();
    let groups = PositionGroup::ALL.to_vec();
    let effect = (0..layers).map(|l| vec![1.0, 1.0 - x(l), 0.5 * x(l), 0.1, 0.78 * (1.0 - x(l)), x(l)]).collect();
    CausalOverview {
        sample_id: s.id.clone(),
        form: AnswerForm::Letter,
        opening: String::new(),
        labels,
        gold: Some(0),
        lens: Some(Ok(DecisionCurve { curve, answer: Some(1), decided_at: Some(layers / 2) })),
        knockout: Some(Ok(KnockoutTable { window: 1, edges, target: "B".into(), base_logprob: -0.5, delta })),
        patch: Some(Ok(PatchMap {
            groups,
            contrast: "logit(\"A\") - logit(\"C\"), the gold answer and its mirror".into(),
            ld_clean: 1.25,
            ld_corrupt: -0.8,
            vision: vec![Some(1.0), Some(0.98), None, Some(0.12), Some(0.78), None],
            effect,
        })),
    }
}

/// Focuses the pane and takes its request as submitted with `id`.
fn open(app: &mut App, id: u64) -> JobRequest {
    ask(app, &["7"], id)
}

/// Presses `pressed`, whose last effect must be the pane's request, and takes it as submitted with `id`.
fn ask(app: &mut App, pressed: &[&str], id: u64) -> JobRequest {
    let effects = keys(app, pressed);
    let Some(Effect::Submit { purpose: purpose @ Purpose::Pane { pane: Pane::Causal, .. }, request, focused: true }) = effects.first()
    else {
        panic!("{effects:?}")
    };
    update(app, Msg::Submitted { purpose: purpose.clone(), id });
    update(app, Msg::Job(JobEvent::Started { id, kind: "causal" }));
    (**request).clone()
}

fn feed(app: &mut App, id: u64, o: CausalOverview) {
    update(app, Msg::Job(JobEvent::Causal { id, overview: Box::new(o) }));
}

#[test]
fn causal_pane_at_80x24_and_160x48() {
    for (w, h) in [(80u16, 24u16), (100, 30), (160, 48)] {
        let (_d, mut app) = app();
        keys(&mut app, &["j"]);
        open(&mut app, 11);
        let o = overview(&app, 2);
        feed(&mut app, 11, o);
        update(&mut app, Msg::Job(JobEvent::Finished { id: 11 }));
        insta::assert_snapshot!(format!("causal_{w}x{h}"), screen(&app, w, h));
    }
}

#[test]
fn the_pane_asks_for_the_focused_sample_latest_wins() {
    let (_d, mut app) = app();
    let JobRequest::Causal { sample, form, window } = open(&mut app, 11) else { panic!() };
    assert_eq!((sample.id.as_str(), form, window), (app.focused_sample().unwrap().id.as_str(), AnswerForm::Auto, 1));
    assert!(keys(&mut app, &["7"]).is_empty(), "already on its way: not asked twice");
    // The cursor moves on: the next sample is asked for (the manager cancels the older one).
    let JobRequest::Causal { sample: next, .. } = ask(&mut app, &["j"], 12) else { panic!() };
    assert_eq!(next.id, app.focused_sample().unwrap().id);
    assert_ne!(next.id, sample.id);
    // The older job's late answer does not land.
    let (_d2, other) = app_with_focus_on(&sample.id);
    feed(&mut app, 11, overview(&other, 2));
    assert!(app.causal.work.result.is_none());
    // Window and answer form are part of the request.
    let JobRequest::Causal { window, .. } = ask(&mut app, &["w"], 13) else { panic!() };
    assert_eq!(window, 2, "the engine has 2 layers, so the windows are 1 and 2");
    let JobRequest::Causal { window, .. } = ask(&mut app, &["w"], 14) else { panic!() };
    assert_eq!(window, 1, "4 is longer than the model and not offered");
    let JobRequest::Causal { form, .. } = ask(&mut app, &["f"], 15) else { panic!() };
    assert_eq!(form, AnswerForm::Letter);
    // Esc cancels the busy job; r asks again even when nothing changed.
    assert!(matches!(keys(&mut app, &["esc"])[..], [Effect::Cancel(15)]));
    update(&mut app, Msg::Job(JobEvent::Cancelled { id: 15 }));
    assert_eq!(app.causal.work.phase, Phase::Cancelled);
    assert!(screen(&app, 120, 40).contains("cancelled (r computes again)"));
    ask(&mut app, &["r"], 16);
}

/// An app like `app()` with the cursor on sample `id`.
fn app_with_focus_on(id: &str) -> (tempfile::TempDir, App) {
    let (d, mut a) = app();
    let at = a.samples.visible.iter().position(|&i| a.dataset.samples[i].id == id).unwrap();
    a.samples.cursor = at;
    (d, a)
}

#[test]
fn parts_arrive_one_by_one_and_a_failed_part_says_why() {
    let (_d, mut app) = app();
    open(&mut app, 11);
    let full = overview(&app, 2);
    let lens_only = CausalOverview { knockout: None, patch: None, ..full.clone() };
    feed(&mut app, 11, lens_only);
    let s = screen(&app, 160, 48);
    assert!(s.contains("logit lens:") && s.contains("knockout: computing…") && s.contains("patching: computing…"), "{s}");
    assert!(s.contains("answer B leads the candidates from layer 1 of 2 · gold A"), "{s}");
    let failed = CausalOverview {
        patch: Some(Err("no mirrored option to contrast, and the mirror did not change the top token (7): nothing to patch back".into())),
        ..full
    };
    feed(&mut app, 11, failed);
    update(&mut app, Msg::Job(JobEvent::Finished { id: 11 }));
    let s = screen(&app, 160, 48);
    assert!(s.contains("knockout: Δ log p(B)") && s.contains("patching: no mirrored option to contrast"), "{s}");
}

#[test]
fn deep_models_scroll_the_layer_tables_together() {
    let (_d, mut app) = app();
    app.engine = EngineStatus::Ready { seconds: 0.1, layers: 28 };
    open(&mut app, 11);
    let o = overview(&app, 28);
    feed(&mut app, 11, o);
    let s = screen(&app, 80, 24);
    assert!(s.contains(" · 0–") && !s.contains(" 27 "), "the first rows, and the range shown:\n{s}");
    keys(&mut app, &["J"; 40]);
    assert_eq!(app.causal.scroll, 27, "clamped to the last layer");
    let s = screen(&app, 80, 24);
    let rows_of_27 = s.lines().filter(|l| l.starts_with("│27 ") && l.contains(" 27 ")).count();
    assert!(s.contains("–27/28") && rows_of_27 == 1, "the last page, its layer rows side by side:\n{s}");
    keys(&mut app, &["K"; 50]);
    assert_eq!(app.causal.scroll, 0);
}

#[test]
fn the_batch_key_runs_the_filter_into_the_open_run() {
    let (_d, mut app) = app();
    keys(&mut app, &["1", "s", "s"]); // wrong answers only
    let wrong: Vec<String> = app.visible_samples().iter().map(|s| s.id.clone()).collect();
    assert!(!wrong.is_empty());
    keys(&mut app, &["7"]);
    let effects = keys(&mut app, &["w", "B"]);
    let Some(Effect::CausalBatch { samples, form, window, run }) = effects.last() else { panic!("{effects:?}") };
    assert_eq!(samples.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), wrong);
    assert_eq!((*form, *window, run.as_path()), (AnswerForm::Auto, 2, std::path::Path::new("runs/hand")));
    assert!(app.message.as_deref().unwrap().contains("causal batch over"), "{:?}", app.message);
    // Without outcomes to group by, the key says what to do first.
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 4);
    let mut empty = app_with(ds, OpenRun::new("fresh".into(), "runs/fresh".into(), None, vec![]), DEFAULT);
    keys(&mut empty, &["7"]);
    let effects = keys(&mut empty, &["B"]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::CausalBatch { .. })), "{effects:?}");
    assert!(empty.message.as_deref().unwrap().contains("run fresh has none: 6 then r evaluates the filter"), "{:?}", empty.message);
}

#[test]
fn help_lists_the_causal_keys_from_the_keymap() {
    let (_d, mut app) = app();
    keys(&mut app, &["7", "?"]);
    let s = screen(&app, 160, 48);
    for want in ["Knockout window: 1, 2, 4", "Lens, knockout and patching over the current filter", "Causal pane (logit lens"] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
}

#[test]
fn a_longer_window_keeps_the_tables_level() {
    let (_d, mut app) = app();
    app.engine = EngineStatus::Ready { seconds: 0.1, layers: 4 };
    open(&mut app, 11);
    let mut o = overview(&app, 4);
    if let Some(Ok(k)) = &mut o.knockout {
        k.window = 2;
        k.delta.pop(); // 3 window starts over 4 layers
    }
    feed(&mut app, 11, o);
    let s = screen(&app, 160, 48);
    assert!(s.lines().any(|l| l.contains("window 2 · L answer") && l.contains("LD clean 1.25")), "footers on one row:\n{s}");
}
