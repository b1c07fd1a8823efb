//! The input line: typing, then what enter does with the text (search,
//! a question, a view name, the finetune line).

use super::*;
use crate::tui::keymap::Mode;

/// The finetune line as it first opens: flags of `flipscope train`, parsed by
/// its own grammar. The workbench adds `--model` (its model) and `--out`
/// (`runs/finetunes/ft-<time>`); `--data current` is the open dataset.
pub const FINETUNE_LINE: &str = "--data current --lora r=16,alpha=32,dropout=0.05 --max-steps 100 --lr 0.0001 --batch 4";

/// The finetune line as a `TrainConfig` (model and out still empty), or
/// clap's complaint.
pub fn parse_finetune_line(line: &str) -> Result<TrainConfig, String> {
    // The workbench fills in --model and --out; clap only needs something there.
    // `method=grpo` is taken as `--method=grpo` for any flag the grammar knows
    // (`r=16` after `--lora` is a value, not a flag, and stays as it is).
    let flags = TrainConfig::long_flags();
    let token = |t: &str| match t.split_once('=') {
        Some((k, _)) if !t.starts_with('-') && flags.iter().any(|f| *f == k.replace('_', "-")) => {
            format!("--{}", t.replacen('_', "-", k.matches('_').count()))
        }
        _ => t.to_string(),
    };
    let args = ["--model", "-", "--out", "-"].into_iter().map(String::from).chain(line.split_whitespace().map(token));
    let cfg = TrainConfig::try_parse_from(args).map_err(|e| {
        // clap's complaint on one line, without its usage and help hints.
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
            .filter(|l| !l.is_empty())
            .collect();
        lines.join(" ").trim_start_matches("error: ").to_string()
    })?;
    Ok(TrainConfig { model: PathBuf::new(), out: PathBuf::new(), ..cfg })
}

pub(super) fn on_input_key(app: &mut App, key: &str) -> Vec<Effect> {
    let Some(input) = app.input.as_mut() else { return vec![] };
    match app.keymap.lookup(Mode::Input, key) {
        Some(Action::Select) => {
            let Input { purpose, text } = app.input.take().unwrap_or(Input { purpose: InputPurpose::Search, text: String::new() });
            return submit_input(app, purpose, text.trim().to_string());
        }
        Some(Action::Cancel) => {
            let purpose = input.purpose;
            app.input = None;
            if purpose == InputPurpose::Search {
                set_chip(app, None, |f| matches!(f, Filter::Text(_)));
            }
            return vec![];
        }
        Some(Action::Backspace) => {
            input.text.pop();
        }
        _ => {
            let c = if key == "space" { Some(' ') } else { key.chars().next().filter(|_| key.chars().count() == 1) };
            match c {
                Some(c) => input.text.push(c),
                None => return vec![],
            }
        }
    }
    // Search filters as you type.
    if input.purpose == InputPurpose::Search {
        let text = input.text.clone();
        let chip = (!text.is_empty()).then_some(Filter::Text(text));
        set_chip(app, chip, |f| matches!(f, Filter::Text(_)));
    }
    vec![]
}

fn submit_input(app: &mut App, purpose: InputPurpose, text: String) -> Vec<Effect> {
    match purpose {
        InputPurpose::Search => vec![],
        InputPurpose::Finetune => match parse_finetune_line(&text) {
            Ok(cfg) => {
                app.runs.in_jobs = true;
                if cfg.data == "current" && !app.run.records.is_empty() {
                    app.message = Some(format!(
                        "⚠ training on the questions you evaluate on (run {}): scores on this data will flatter the finetune",
                        app.run.name
                    ));
                }
                vec![Effect::Finetune(Box::new(cfg))]
            }
            Err(e) => {
                app.message = Some(format!("finetune: {e}"));
                app.input = Some(Input { purpose: InputPurpose::Finetune, text });
                vec![]
            }
        },
        InputPurpose::Question if text.is_empty() => vec![],
        InputPurpose::Question => match parse_typed(&text) {
            Ok((question, _)) if question.is_empty() => {
                app.message = Some("no question after the gold: nothing asked".into());
                vec![]
            }
            // A letter the sample has no option for would leave nothing to judge against.
            Ok((_, Some(TypedGold::Letter(l)))) if app.focused_sample().is_some_and(|s| s.option(l).is_none()) => {
                let letters: String = app.focused_sample().map(|s| s.options.iter().map(|o| o.letter).collect()).unwrap_or_default();
                app.message = Some(format!("gold={l}: this sample's options are {letters}; nothing asked"));
                vec![]
            }
            Ok((question, gold)) => {
                app.live.question = Some(question);
                app.live.typed_gold = gold;
                ask(app, app.live.variant)
            }
            Err(e) => {
                app.message = Some(e);
                vec![]
            }
        },
        InputPurpose::ViewName if text.is_empty() => vec![],
        InputPurpose::ViewName => {
            let view = SavedView {
                name: text.clone(),
                filters: app.samples.filters.clone(),
                sort: app.samples.sort,
                reverse: app.samples.reverse,
            };
            let views = &mut app.samples.views;
            match views.iter().position(|v| v.name == text) {
                Some(i) => views[i] = view,
                None => views.push(view),
            }
            app.samples.view = views.iter().position(|v| v.name == text);
            app.message = Some(format!("saved view `{text}`"));
            vec![Effect::SaveViews(views.clone())]
        }
    }
}
