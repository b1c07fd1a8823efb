//! The Saliency pane: |d logit / d pixel| over the focused sample's image,
//! original and boxed side by side with the share of saliency mass inside
//! the box; or, in attention mode, one layer's attention over the image.

use super::widgets::key;
use crate::data::images::decode;
use crate::data::visual_prompt::{draw_box, BoxStyle};
use crate::data::{BoundingBox, ImageSource};
use crate::tui::action::Action;
use crate::tui::images::{ImageCache, MakeImage};
use crate::tui::keymap::Mode;
use crate::tui::state::{App, Phase, SaliencyMode};
use crate::viz::{heatmap, HeatmapStyle, SaliencyMap};
use image::DynamicImage;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App, images: &mut ImageCache) {
    let t = &app.theme;
    let s = &app.saliency;
    let Some(sample) = app.focused_sample() else {
        f.render_widget(Paragraph::new("no sample selected").style(t.muted()), area);
        return;
    };
    let goal = &s.goal;
    let layers = app.layers().unwrap_or(0);
    let k = |a| key(app, Mode::Saliency, a);
    let settings = match s.mode {
        SaliencyMode::Gradient => format!(
            "{} · method {} ({}) · explains {goal} ({}) · {} ({}) · alpha {:.1} ({}/{}) · {}: attention",
            sample.id,
            s.method,
            k(Action::CycleMethod),
            k(Action::CycleTarget),
            s.colormap.name(),
            k(Action::CycleColormap),
            s.alpha,
            k(Action::AlphaUp),
            k(Action::AlphaDown),
            k(Action::ToggleAttention)
        ),
        SaliencyMode::Attention => format!(
            "{} · attention, layer {}/{} ({}/{}) · mean over heads · {} ({}) · alpha {:.1} · {}: gradients",
            sample.id,
            s.layer,
            layers.saturating_sub(1),
            k(Action::PrevFrame),
            k(Action::NextFrame),
            s.colormap.name(),
            k(Action::CycleColormap),
            s.alpha,
            k(Action::ToggleAttention)
        ),
    };
    let [head, status, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(Span::styled(settings, t.highlight())).wrap(Wrap { trim: true }), head);
    let result = s.work.result.as_ref().filter(|r| r.sample_id == sample.id);
    let phase = match &s.work.phase {
        Phase::Queued | Phase::Running => {
            Span::styled(format!("computing… (scrolling does not wait; {} cancels)", k(Action::Cancel)), t.golden())
        }
        Phase::Failed(e) => Span::styled(format!("failed: {e}"), t.bad()),
        Phase::Cancelled => Span::styled(format!("cancelled ({} computes again)", k(Action::Recompute)), t.muted()),
        _ if result.is_none() => Span::styled(format!("{} computes the map for this sample", k(Action::Recompute)), t.muted()),
        _ => Span::styled(format!("explains {}", result.map(|r| r.target.as_str()).unwrap_or("")), t.muted()),
    };
    f.render_widget(Paragraph::new(phase), status);
    let Some(r) = result else { return };
    let Some(src) = sample.images.first() else { return };
    let style = HeatmapStyle {
        colormap: s.colormap,
        alpha: s.alpha,
        clip_percentile: if r.attention.is_some() { 100.0 } else { 99.0 },
        ..Default::default()
    };
    let styles = (t.bad(), t.muted());
    let look = format!("{}|{}|{}", r.key, s.colormap.name(), s.alpha);
    match &r.boxed {
        Some((boxed, b)) => {
            let [l, rgt] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
            let [lt, li] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(l);
            let [rt, ri] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(rgt);
            f.render_widget(Paragraph::new(Span::styled("original", t.title())), lt);
            f.render_widget(Paragraph::new(Span::styled("boxed (red box on the reference)", t.title())), rt);
            let plain_style = HeatmapStyle { boxes: vec![b.clone()], ..style.clone() };
            images.draw(f, li, "saliency-plain", &look, styles, || heatmap_over(&r.plain[0], src, None, plain_style));
            images.draw(f, ri, "saliency-boxed", &look, styles, || heatmap_over(&boxed[0], src, Some(b), style.clone()));
            let (before, after) = (r.plain[0].mass_inside(b), boxed[0].mass_inside(b));
            let area_share = (b.width() * b.height()) as f64 / (r.plain[0].width * r.plain[0].height).max(1) as f64;
            f.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled("mass in box: ", t.muted()),
                    Span::styled(format!("{:.1}% → {:.1}% boxed", 100.0 * before, 100.0 * after), t.heading(true)),
                    Span::styled(format!(" (the box is {:.1}% of the image)", 100.0 * area_share), t.muted()),
                ])),
                foot,
            );
        }
        None => {
            images.draw(f, body, "saliency-plain", &look, styles, || heatmap_over(&r.plain[0], src, None, style.clone()));
            let text = match r.attention {
                Some((layer, share)) => {
                    format!("layer {layer}: {:.1}% of the answer position's attention is on image tokens", 100.0 * share)
                }
                None => "no reference box in this sample, so no boxed comparison".to_string(),
            };
            f.render_widget(Paragraph::new(Span::styled(text, t.muted())), foot);
        }
    }
}

/// The work that draws `map` over the decoded image (with a red box drawn
/// first when `red_box` is given), for the image lane.
fn heatmap_over(map: &SaliencyMap, src: &ImageSource, red_box: Option<&BoundingBox>, style: HeatmapStyle) -> MakeImage {
    let (map, src, red_box) = (map.clone(), src.clone(), red_box.cloned());
    Box::new(move || {
        let base = decode(&src).map_err(|e| e.to_string())?;
        let base = match &red_box {
            Some(b) => draw_box(&base, b, &BoxStyle::default()),
            None => base,
        };
        Ok(DynamicImage::ImageRgb8(heatmap::render(&map, &base.to_rgb8(), &style)))
    })
}
