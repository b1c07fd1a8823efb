//! The Live answer pane: asking the model about the focused sample now.

use super::*;

pub(super) fn ask(app: &mut App, variant: AskVariant) -> Vec<Effect> {
    let Some(sample) = app.focused_sample().cloned() else { return vec![] };
    app.live.variant = variant;
    app.live.sample_id = Some(sample.id.clone());
    app.live.scores = None;
    app.live.text.clear();
    app.live.record = None;
    app.live.saved = false;
    let variant = match Variant::parse(variant.spec()) {
        Ok(v) => v,
        Err(e) => {
            app.live.phase = Phase::Failed(format!("{e:#}"));
            return vec![];
        }
    };
    let config = EvalConfig {
        prompt: PromptTemplate::default_prompt(),
        mode: EvalMode::Generate { max_new_tokens: LIVE_MAX_NEW_TOKENS },
        variant,
        circular: false,
        batch: 1,
    };
    let request = JobRequest::Ask { sample: Box::new(sample), config, question: app.live.question.clone() };
    vec![Effect::Submit { purpose: Purpose::Live, request: Box::new(request), focused: true }]
}

pub(super) fn live_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    Some(match action {
        Action::AskPlain | Action::AskBoxed | Action::AskFlipped | Action::AskAdaptVis => {
            app.live.question = None;
            let v = match action {
                Action::AskBoxed => AskVariant::Boxed,
                Action::AskFlipped => AskVariant::Flipped,
                Action::AskAdaptVis => AskVariant::AdaptVis,
                _ => AskVariant::Plain,
            };
            ask(app, v)
        }
        Action::AskTyped => {
            let text = app.focused_sample().map(|s| s.question.clone()).unwrap_or_default();
            app.input = Some(Input { purpose: InputPurpose::Question, text });
            vec![]
        }
        Action::SaveAnswer => match (&app.live.record, app.live.saved) {
            (Some(r), false) => {
                let mut record = r.clone();
                record.variant.insert("asked".into(), app.live.variant.spec().into());
                if let Some(q) = &app.live.question {
                    record.variant.insert("question".into(), q.clone().into());
                }
                app.live.saved = true;
                vec![Effect::SaveLive { dir: app.run.dir.clone(), record: Box::new(record) }]
            }
            (Some(_), true) => {
                app.message = Some("this answer is already saved".into());
                vec![]
            }
            (None, _) => {
                app.message = Some("nothing to save yet: ask first".into());
                vec![]
            }
        },
        _ => return None,
    })
}
