//! The Saliency pane: method, target, colormap, attention layers, and the
//! latest-wins request that follows the cursor.

use super::*;

pub(super) fn saliency_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    // Predicted, gold, then each option of the focused sample.
    let mut goals = vec![SaliencyGoal::Predicted, SaliencyGoal::Gold];
    goals.extend(app.focused_sample().into_iter().flat_map(|s| s.options.iter().map(|o| SaliencyGoal::Label(o.letter.to_string()))));
    let layers = app.layers().unwrap_or(1);
    let s = &mut app.saliency;
    match action {
        Action::CycleMethod => s.method = cycle(&SALIENCY_METHODS, &s.method),
        Action::CycleTarget => s.goal = cycle(&goals, &s.goal),
        Action::CycleColormap => {
            s.colormap = s.colormap.next();
            return Some(vec![]);
        }
        Action::AlphaUp => {
            s.alpha = ((s.alpha + 0.1).min(1.0) * 10.0).round() / 10.0;
            return Some(vec![]);
        }
        Action::AlphaDown => {
            s.alpha = ((s.alpha - 0.1).max(0.1) * 10.0).round() / 10.0;
            return Some(vec![]);
        }
        Action::ToggleAttention => {
            s.mode = match s.mode {
                SaliencyMode::Gradient => SaliencyMode::Attention,
                SaliencyMode::Attention => SaliencyMode::Gradient,
            }
        }
        Action::Right | Action::NextFrame if s.mode == SaliencyMode::Attention => {
            s.layer = (s.layer + 1).min(layers.saturating_sub(1));
        }
        Action::Left | Action::PrevFrame if s.mode == SaliencyMode::Attention => s.layer = s.layer.saturating_sub(1),
        Action::Recompute => return Some(saliency_request(app, true).into_iter().collect()),
        _ => return None,
    }
    Some(saliency_request(app, false).into_iter().collect())
}

/// The saliency job for what the pane should show, unless it is already
/// shown or on its way (or `force`).
pub(super) fn saliency_request(app: &mut App, force: bool) -> Option<Effect> {
    let sample = askable_sample(app)?;
    let s = &app.saliency;
    let key = match s.mode {
        SaliencyMode::Gradient => format!("{}|{}|{}", sample.id, s.method, s.goal),
        SaliencyMode::Attention => format!("{}|attention|{}", sample.id, s.layer),
    };
    if !s.work.wants(&key, force) {
        return None;
    }
    let request = match s.mode {
        SaliencyMode::Attention => JobRequest::Attention { sample: Box::new(sample), layer: s.layer },
        SaliencyMode::Gradient => {
            JobRequest::SampleSaliency { sample: Box::new(sample), goal: s.goal.clone(), method: s.method, compare_boxed: true }
        }
    };
    Some(Effect::Submit { purpose: Purpose::Pane { pane: Pane::Saliency, key }, request: Box::new(request), focused: true })
}
