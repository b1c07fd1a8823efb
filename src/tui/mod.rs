//! The workbench TUI. One tokio loop reads terminal events, a tick and job
//! events; `update` turns each into state changes and effects; the runtime
//! carries effects out; drawing is a pure function of the state. The TUI
//! never calls torch: the engine lives on the job manager's thread.

pub mod action;
pub mod draw;
pub mod filter;
pub mod frames;
pub mod images;
pub mod keymap;
pub mod options;
pub mod runtime;
pub mod state;
pub mod theme;
pub mod update;

pub use options::TuiOptions;
pub use state::{App, Pane};

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use std::collections::VecDeque;
use std::time::Duration;
use update::{update, Msg};

/// Everything the app needs before the terminal is taken over; errors here
/// are printed as plain text.
pub struct Setup {
    pub app: App,
    pub model: std::path::PathBuf,
    pub data_spec: String,
    /// How the checkpoint answers, as its card declares.
    pub answers: crate::config::AnswersWith,
}

pub fn setup(args: &TuiOptions) -> Result<Setup> {
    let spec = match &args.data {
        Some(s) => s.clone(),
        None => crate::config::demo_dataset()?.display().to_string(),
    };
    let ds = crate::data::load(&spec).with_context(|| format!("loading {spec}"))?;
    let keymap = keymap::Keymap::load()?;
    let theme = theme::Theme::load(args.theme.as_deref())?;
    let (model, model_label) = match &args.model {
        Some(m) => (
            m.clone(),
            match &args.adapter {
                Some(a) => format!("{} + adapter {}", short_path(m), short_path(a)),
                None => short_path(m),
            },
        ),
        None => (crate::config::demo_model()?, crate::config::DEMO_MODEL_LABEL.to_string()),
    };
    let answers = crate::config::declared_answers(&model)?;
    let run = runtime::initial_run(std::path::Path::new("runs"), args.run.as_deref(), &ds.name)?;
    let foreign = run.foreign_records(&ds);
    if foreign > 0 {
        anyhow::bail!(
            "run `{}`: {foreign} of its answers were judged against another gold than {spec}'s samples with the same ids; it ran on other data (name another --run)",
            run.name
        );
    }
    let views_file = crate::config::config_dir().join("views.toml");
    let views = match crate::fsutil::read_optional_text(&views_file)? {
        Some(text) => filter::parse_views(&text, &views_file.display().to_string())?,
        None => vec![],
    };
    let mut app = App::new(ds, run, keymap, theme);
    app.model_label = model_label;
    app.samples.views = views;
    if args.data.is_none() {
        app.data_label = "demo synthetic scenes".into();
    }
    Ok(Setup { app, model, data_spec: spec, answers })
}

pub fn run(args: &TuiOptions) -> Result<()> {
    let Setup { mut app, model, data_spec, answers } = setup(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        // ratatui::init installs a panic hook that restores the terminal first.
        let mut terminal = ratatui::init();
        let picker = image_picker().unwrap_or_else(ratatui_image::picker::Picker::halfblocks);
        let images = images::ImageCache::new(picker);
        app.protocol = images.protocol_name();
        let (mut runtime, mut msgs) = runtime::Runtime::start(model, args.adapter.clone(), args.placement, data_spec, images)?;
        runtime.set_eval_mode(args.rerun_mode(answers));
        let result = event_loop(&mut terminal, &mut app, &mut runtime, &mut msgs).await;
        ratatui::restore();
        // Stop the engine before the process ends: a training run saves its
        // checkpoint, and nothing is cut off inside libtorch.
        if !runtime.jobs.shutdown(Duration::from_millis(500)) {
            eprintln!("flipscope: stopping background jobs (a step or a save in progress)...");
            if !runtime.jobs.shutdown(Duration::from_secs(120)) {
                eprintln!("flipscope: the engine did not stop within 2 minutes; exiting anyway");
            }
        }
        result
    })
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    runtime: &mut runtime::Runtime,
    msgs: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminal_events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut queue: VecDeque<Msg> = VecDeque::from([Msg::Action(action::Action::Noop)]);
    runtime.execute(update::Effect::ListRuns).into_iter().for_each(|m| queue.push_back(m));
    loop {
        while let Some(msg) = queue.pop_front() {
            for effect in update(app, msg) {
                queue.extend(runtime.execute(effect));
            }
        }
        if app.quit {
            return Ok(());
        }
        terminal.draw(|f| draw::draw(f, app, &mut runtime.images))?;
        tokio::select! {
            ev = terminal_events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => queue.push_back(Msg::Key(keymap::key_name(&k))),
                Some(Ok(_)) => {} // resize and the rest: redraw
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            Some(msg) = msgs.recv() => {
                queue.push_back(msg);
                // Take every message already waiting, so a burst of tokens is one redraw.
                while let Ok(msg) = msgs.try_recv() {
                    queue.push_back(msg);
                }
            }
            _ = tick.tick() => {}
            _ = sigterm.recv() => return Ok(()),
            _ = sighup.recv() => return Ok(()),
        }
    }
}

/// A path as the status line shows it: whole when short, else its last two parts.
pub fn short_path(p: &std::path::Path) -> String {
    let full = p.display().to_string();
    if full.chars().count() <= 40 {
        return full;
    }
    let parts: Vec<String> = p.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
    format!("…/{}", parts.into_iter().rev().collect::<Vec<_>>().join("/"))
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
