//! The Live answer pane: asking the model about the focused sample now.

use super::*;

pub(super) fn ask(app: &mut App, variant: AskVariant) -> Vec<Effect> {
    let Some(mut sample) = app.focused_sample().cloned() else {
        app.message = Some("no sample to ask: the filter shows none".into());
        return vec![];
    };
    if app.live.question.is_some() {
        // A typed question is judged only against the gold the user gave, as
        // asked: on the mirrored image a direction is given mirrored, and the
        // variant mirrors it back (a letter names the same option either way).
        let gold = match (variant, app.live.typed_gold) {
            (AskVariant::Flipped, Some(TypedGold::Direction(d))) => Some(TypedGold::Direction(d.mirrored())),
            (_, gold) => gold,
        };
        with_typed_gold(&mut sample, gold);
    }
    app.live.variant = variant;
    app.live.sample_id = Some(sample.id.clone());
    app.live.asked_from_list = false;
    app.live.asked = None;
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

/// `gold=B rest` or `gold=front-left rest`: the gold the user gives a typed
/// question, and the question. Without the prefix there is no gold.
pub fn parse_typed(text: &str) -> Result<(String, Option<TypedGold>), String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix("gold=") else { return Ok((text.to_string(), None)) };
    let (gold, question) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let gold = match (gold.chars().count(), gold.chars().next()) {
        (1, Some(c)) if c.is_ascii_alphabetic() => TypedGold::Letter(c.to_ascii_uppercase()),
        _ => TypedGold::Direction(
            crate::spatial::parse_option(gold).ok_or_else(|| format!("gold={gold}: not an option letter or a direction"))?,
        ),
    };
    Ok((question.trim().to_string(), Some(gold)))
}

/// `sample` with its gold replaced by the user's (or none).
fn with_typed_gold(sample: &mut Sample, gold: Option<TypedGold>) {
    (sample.gold_letter, sample.gold_text, sample.gold_direction) = (None, None, None);
    match gold {
        Some(TypedGold::Letter(l)) => {
            sample.set_gold_letter(l);
        }
        Some(TypedGold::Direction(d)) => {
            match sample.options.iter().find(|o| o.direction == Some(d)).map(|o| o.letter) {
                Some(l) => {
                    sample.set_gold_letter(l);
                }
                None => sample.gold_text = Some(d.name()),
            }
            sample.gold_direction = Some(d);
        }
        None => {}
    }
}

pub(super) fn live_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    Some(match action {
        Action::AskPlain | Action::AskBoxed | Action::AskFlipped | Action::AskAdaptVis => {
            app.live.question = None;
            app.live.typed_gold = None;
            let v = match action {
                Action::AskBoxed => AskVariant::Boxed,
                Action::AskFlipped => AskVariant::Flipped,
                Action::AskAdaptVis => AskVariant::AdaptVis,
                _ => AskVariant::Plain,
            };
            ask(app, v)
        }
        Action::AskTyped => {
            app.input = Some(Input { purpose: InputPurpose::Question, text: String::new() });
            app.message =
                Some("type a question (gold=B or gold=left first to judge it); it is asked about the focused sample's image".into());
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
