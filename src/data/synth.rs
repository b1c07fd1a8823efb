//! Procedurally drawn scenes with known geometry (`data synth`).
//!
//! The picture is the ground seen from a raised camera: image x is the
//! camera's right, image y grows towards the camera. So in the camera frame
//! `front` (nearer the camera) is +y and `right` is +x. Agents are discs with
//! a white arrow showing where they face; an agent facing `f` has its right
//! hand at `(-f.y, f.x)`, which makes camera-frame angle `phi - psi` the
//! agent-frame angle `psi` (the camera frame is the mirror image of an
//! agent's). Stacked pairs (one block on another) give above/below.

use super::draw::{fill_circle, fill_polygon, fill_rect, line};
use super::loaders::generic::to_json;
use super::sample::{AnswerStyle, BoundingBox, ImageSource, Perspective, Sample};
use crate::spatial::{Direction, Heading, Vertical};
use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Image side; a multiple of 28 (Qwen2.5-VL's patch x merge).
pub const SIDE: u32 = 392;
const MARGIN: f32 = 36.0;
const SIZE: f32 = 17.0;
/// The largest `scale=`: bigger objects would not fit two apart in a scene.
pub const MAX_SCALE: f32 = 3.0;
/// Labels are only given where the true angle is this close to a compass
/// point, so no label sits on a boundary between two directions.
pub const MAX_JITTER_DEG: f32 = 10.0;

const COLORS: [(&str, [u8; 3]); 6] = [
    ("red", [220, 40, 40]),
    ("blue", [40, 80, 220]),
    ("green", [40, 170, 70]),
    ("yellow", [230, 200, 30]),
    ("purple", [140, 60, 180]),
    ("orange", [240, 130, 20]),
];
const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

#[derive(Debug, Clone)]
pub struct Thing {
    pub name: String,
    pub shape: &'static str,
    pub color: [u8; 3],
    pub x: f32,
    pub y: f32,
    /// 0 on the ground, 1 resting on the object below it.
    pub level: u8,
    /// Facing angle in the camera frame (degrees), for agents.
    pub facing: Option<f32>,
    /// Radius in pixels (SIZE at scale 1).
    pub size: f32,
}

impl Thing {
    fn bbox(&self) -> BoundingBox {
        let r = if self.facing.is_some() { self.size + 4.0 } else { self.size };
        let mut b = BoundingBox::new(self.x - r, self.y - r, self.x + r, self.y + r);
        b.label = Some(self.name.clone());
        b
    }
}

/// Camera-frame angle (degrees clockwise from front) of the vector a->b.
pub fn camera_angle(a: (f32, f32), b: (f32, f32)) -> f32 {
    let (right, forward) = (b.0 - a.0, b.1 - a.1);
    right.atan2(forward).to_degrees().rem_euclid(360.0)
}

/// Angle of a->b in the frame of an agent at `a` facing camera-angle `phi`.
pub fn agent_angle(a: (f32, f32), phi: f32, b: (f32, f32)) -> f32 {
    let f = (phi.to_radians().sin(), phi.to_radians().cos());
    let r = (-f.1, f.0);
    let v = (b.0 - a.0, b.1 - a.1);
    let (forward, right) = (v.0 * f.0 + v.1 * f.1, v.0 * r.0 + v.1 * r.1);
    right.atan2(forward).to_degrees().rem_euclid(360.0)
}

/// The compass heading of an angle, if it is within MAX_JITTER_DEG of one.
pub fn heading_of(angle: f32) -> Option<Heading> {
    let k = (angle / 45.0).round();
    ((angle - k * 45.0).abs() <= MAX_JITTER_DEG).then(|| Heading::from_angle(k as i32 * 45))
}

fn offset(angle_deg: f32, d: f32) -> (f32, f32) {
    (d * angle_deg.to_radians().sin(), d * angle_deg.to_radians().cos())
}

struct SceneBuilder {
    rng: ChaCha8Rng,
    things: Vec<Thing>,
    used: Vec<(usize, usize)>,
    /// Object radius; margins and spacing grow with it (scale 1: the defaults).
    size: f32,
}

impl SceneBuilder {
    fn margin(&self) -> f32 {
        MARGIN + (self.size - SIZE)
    }

    /// Room above for the horizon band and a stacked object.
    fn top(&self) -> f32 {
        self.margin() + self.size + SIZE
    }

    fn inside(&self, p: (f32, f32)) -> bool {
        let hi = SIDE as f32 - self.margin();
        p.0 >= self.margin() && p.0 <= hi && p.1 >= self.top() && p.1 <= hi
    }

    fn clear_of(&self, p: (f32, f32)) -> bool {
        let gap = 3.2 * SIZE + 2.0 * (self.size - SIZE);
        self.things.iter().all(|t| (t.x - p.0).hypot(t.y - p.1) > gap)
    }

    fn new_name(&mut self, agent: bool) -> (String, &'static str, [u8; 3]) {
        loop {
            let ci = self.rng.random_range(0..COLORS.len());
            let si = if agent { usize::MAX } else { self.rng.random_range(0..SHAPES.len()) };
            if self.used.contains(&(ci, si)) || (agent && self.used.iter().any(|u| u.1 == usize::MAX)) {
                continue;
            }
            self.used.push((ci, si));
            let (cname, rgb) = COLORS[ci];
            return if agent { (format!("{cname} agent"), "agent", rgb) } else { (format!("{cname} {}", SHAPES[si]), SHAPES[si], rgb) };
        }
    }

    fn place_random(&mut self, agent: bool) -> Option<usize> {
        let (m, top) = (self.margin(), self.top());
        for _ in 0..200 {
            let p = (self.rng.random_range(m..SIDE as f32 - m), self.rng.random_range(top..SIDE as f32 - m));
            if self.clear_of(p) {
                return Some(self.push(p, agent, 0));
            }
        }
        None
    }

    fn push(&mut self, p: (f32, f32), agent: bool, level: u8) -> usize {
        // Positions on a 1/16 px grid keep mirrored coordinates (w - x)
        // exact, so flipping twice gives back the very same numbers.
        let p = ((p.0 * 16.0).round() / 16.0, (p.1 * 16.0).round() / 16.0);
        let (name, shape, color) = self.new_name(agent);
        let facing = agent.then(|| self.rng.random_range(0..8) as f32 * 45.0);
        self.things.push(Thing { name, shape, color, x: p.0, y: p.1, level, facing, size: self.size });
        self.things.len() - 1
    }

    /// Places a new object at `heading` (+- jitter) from `from` as seen in a
    /// frame whose camera angle for agent-angle psi is `to_camera(psi)`.
    fn place_at(&mut self, from: (f32, f32), heading: Heading, to_camera: impl Fn(f32) -> f32) -> Option<usize> {
        let near = 3.5 * SIZE + 2.0 * (self.size - SIZE);
        for _ in 0..200 {
            let jitter = self.rng.random_range(-MAX_JITTER_DEG + 2.0..MAX_JITTER_DEG - 2.0);
            let d = self.rng.random_range(near..(9.0 * SIZE).max(near + SIZE));
            let o = offset(to_camera(heading.angle() as f32 + jitter), d);
            let p = (from.0 + o.0, from.1 + o.1);
            if self.inside(p) && self.clear_of(p) {
                return Some(self.push(p, false, 0));
            }
        }
        None
    }
}

/// One synthetic question with its scene.
pub struct SynthItem {
    pub sample: Sample,
    pub image: RgbImage,
}

fn options_for(rng: &mut ChaCha8Rng, gold: Direction) -> Vec<Direction> {
    let mut opts = vec![gold];
    if gold.has_lateral() && rng.random_bool(0.6) {
        opts.push(gold.mirrored());
    }
    if gold.vertical.is_some() {
        opts.push(gold.vertically_flipped());
    }
    while opts.len() < 4 {
        let d = Direction::horizontal(Heading::ALL[rng.random_range(0..8)]);
        if !opts.contains(&d) {
            opts.push(d);
        }
    }
    opts.shuffle(rng);
    opts
}

fn option_text(d: Direction) -> String {
    match (d.heading, d.vertical) {
        (None, Some(Vertical::Up)) => "above".into(),
        (None, Some(Vertical::Down)) => "below".into(),
        _ => d.name(),
    }
}

/// Which side gold directions lean to: `Left` makes most horizontal answers
/// have a left component (left, front-left, back-left), the kind of skew a
/// flip augmentation is meant to undo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lean {
    #[default]
    None,
    Left,
    Right,
}

impl Lean {
    pub fn parse(s: &str) -> Option<Lean> {
        match s {
            "none" => Some(Lean::None),
            "left" => Some(Lean::Left),
            "right" => Some(Lean::Right),
            _ => None,
        }
    }
}

/// The seed `synth:N` uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 7;

/// Share of horizontal answers on the leaning side when a scene leans.
pub const LEAN_SHARE: f64 = 0.85;

/// Whether scene `index` is held out: one in each group of five, on a kind
/// that rotates from group to group, so the test split has camera, person
/// and vertical questions alike (the kind is index % 5) and small sets have one.
pub fn is_test_index(index: usize) -> bool {
    (index + index / 5) % 5 == 4
}

/// Builds scene `index` of a run with `seed`. Deterministic.
pub fn scene(seed: u64, index: usize) -> SynthItem {
    scene_with(index, &SynthOptions::seeded(seed))
}

/// `scene` drawn as `o` asks: the gold direction leaning to one side, with or
/// without distractor objects (without: only the two objects the question
/// names, an easier first stage for a model trained from scratch), objects
/// drawn `scale` times larger (1 to MAX_SCALE; see SynthOptions::scale).
pub fn scene_with(index: usize, o: &SynthOptions) -> SynthItem {
    let (seed, lean, distractors, scale) = (o.seed, o.lean, o.distractors, o.scale);
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64);
    let kind = index % 5; // 0,1: camera; 2,3: person; 4: above/below
    loop {
        let mut b = SceneBuilder {
            rng: ChaCha8Rng::seed_from_u64(rng.random()),
            things: Vec::new(),
            used: Vec::new(),
            size: SIZE * scale.clamp(1.0, MAX_SCALE),
        };
        let mut heading = Heading::ALL[b.rng.random_range(0..8)];
        if !o.headings.is_empty() {
            heading = o.headings[b.rng.random_range(0..o.headings.len())];
        } else if lean != Lean::None {
            let side: i8 = if lean == Lean::Left { -1 } else { 1 };
            let on_side: Vec<Heading> = Heading::ALL.into_iter().filter(|h| h.lateral_sign() == side).collect();
            let off_side: Vec<Heading> = Heading::ALL.into_iter().filter(|h| h.lateral_sign() != side).collect();
            heading = if b.rng.random_bool(LEAN_SHARE) {
                on_side[b.rng.random_range(0..on_side.len())]
            } else {
                off_side[b.rng.random_range(0..off_side.len())]
            };
        }
        let (category, perspective, question, gold, refi, tgti);
        match kind {
            0 | 1 => {
                let Some(r) = b.place_random(false) else { continue };
                let from = (b.things[r].x, b.things[r].y);
                let Some(t) = b.place_at(from, heading, |a| a) else { continue };
                category = "Camera Relative Direction";
                perspective = Perspective::Camera;
                question = format!("Where is the {} relative to the {}?", b.things[t].name, b.things[r].name);
                gold = Direction::horizontal(heading);
                (refi, tgti) = (r, t);
            }
            2 | 3 => {
                let Some(a) = b.place_random(true) else { continue };
                let phi = b.things[a].facing.expect("agent");
                let from = (b.things[a].x, b.things[a].y);
                let Some(t) = b.place_at(from, heading, |psi| phi - psi) else { continue };
                category = "Person Relative Direction";
                perspective = Perspective::Person;
                question = format!("From the perspective of the {}, where is the {}?", b.things[a].name, b.things[t].name);
                gold = Direction::horizontal(heading);
                (refi, tgti) = (a, t);
            }
            _ => {
                let Some(lo) = b.place_random(false) else { continue };
                let p = (b.things[lo].x, b.things[lo].y - 2.0 * b.size);
                let hi = b.push(p, false, 1);
                let up = b.rng.random_bool(0.5);
                category = "Camera Vertical Relation";
                perspective = Perspective::Camera;
                (refi, tgti) = if up { (lo, hi) } else { (hi, lo) };
                question = format!("Where is the {} relative to the {}?", b.things[tgti].name, b.things[refi].name);
                gold = Direction::vertical(if up { Vertical::Up } else { Vertical::Down });
            }
        }
        // Distractor objects (and an agent now and then) fill the scene.
        let extra = if distractors { b.rng.random_range(1..=3) } else { 0 };
        for _ in 0..extra {
            let agent = kind < 2 && b.rng.random_bool(0.3) && !b.things.iter().any(|t| t.facing.is_some());
            b.place_random(agent);
        }
        let opts = options_for(&mut b.rng, gold);
        let mut s = Sample::new(format!("synth-{index:05}"), "synth");
        s.category = category.into();
        s.perspective = perspective;
        s.question = question;
        s.set_options(opts.iter().map(|d| option_text(*d))).expect("a scene has at most 8 options");
        let gi = opts.iter().position(|d| *d == gold).expect("gold among options");
        s.set_gold_letter(s.options[gi].letter);
        s.reference = Some(format!("the {}", b.things[refi].name));
        s.boxes = vec![b.things[refi].bbox(), b.things[tgti].bbox()];
        s.metadata.insert("reference_object".into(), b.things[refi].name.clone().into());
        s.metadata.insert("target_object".into(), b.things[tgti].name.clone().into());
        s.metadata.insert(
            "objects".into(),
            b.things
                .iter()
                .map(|t| json!({"name": t.name, "shape": t.shape, "x": t.x, "y": t.y, "level": t.level, "facing": t.facing}))
                .collect::<Vec<_>>()
                .into(),
        );
        let image = render(&b.things);
        return SynthItem { sample: s, image };
    }
}

/// Draws a scene: ground, shadows, objects, agents with facing arrows.
pub fn render(things: &[Thing]) -> RgbImage {
    let mut img = RgbImage::from_pixel(SIDE, SIDE, Rgb([236, 232, 222]));
    // Horizon band: the far side of the ground is drawn darker.
    fill_rect(&mut img, 0.0, 0.0, SIDE as f32, 20.0, Rgb([200, 214, 230]));
    let mut order: Vec<&Thing> = things.iter().collect();
    order.sort_by_key(|a| (a.level, a.y as i32));
    for t in order {
        let c = Rgb(t.color);
        let (x, y, s) = (t.x, t.y, t.size);
        if t.level == 0 {
            fill_circle(&mut img, x + 3.0, y + s * 0.8, s * 0.9, Rgb([205, 200, 190]));
        }
        match t.shape {
            "circle" => fill_circle(&mut img, x, y, s, c),
            "square" => fill_rect(&mut img, x - s, y - s, x + s, y + s, c),
            "triangle" => fill_polygon(&mut img, &[(x, y - s), (x + s, y + s), (x - s, y + s)], c),
            _ => {
                let phi = t.facing.unwrap_or(0.0);
                fill_circle(&mut img, x, y, s + 4.0, Rgb([40, 40, 40]));
                fill_circle(&mut img, x, y, s + 1.0, c);
                let (fx, fy) = offset(phi, 1.0);
                let tip = (x + fx * (s + 10.0), y + fy * (s + 10.0));
                let base = (x + fx * 2.0, y + fy * 2.0);
                let (px, py) = (-fy, fx);
                line(&mut img, (x - fx * (s - 6.0), y - fy * (s - 6.0)), base, 5.0, Rgb([255, 255, 255]));
                fill_polygon(
                    &mut img,
                    &[tip, (base.0 + px * 9.0, base.1 + py * 9.0), (base.0 - px * 9.0, base.1 - py * 9.0)],
                    Rgb([255, 255, 255]),
                );
            }
        }
    }
    img
}

fn split_name(index: usize) -> &'static str {
    if is_test_index(index) {
        "test"
    } else {
        "train"
    }
}

/// The question kind of scene `index`: `camera`, `person` or `vertical`.
pub fn kind_name(index: usize) -> &'static str {
    match index % 5 {
        0 | 1 => "camera",
        2 | 3 => "person",
        _ => "vertical",
    }
}

/// What a `synth:N#...` spec asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    pub seed: u64,
    pub lean: Lean,
    pub split: Option<String>,
    /// Question kinds to keep (empty: all).
    pub kinds: Vec<String>,
    pub distractors: bool,
    /// Train on the gold direction's words (`front-left`) instead of its
    /// letter: direct supervision for the perception half of the task.
    pub answer_words: bool,
    /// List the four options in the question (`options=0`: the bare
    /// question, answered in words; no option text to copy from).
    pub options: bool,
    /// Objects drawn this many times larger (1 to MAX_SCALE). A model trained
    /// from scratch learns to read small objects only after large ones: the
    /// answer's signal is the share of the image an object covers.
    pub scale: f32,
    /// Gold headings to draw from (empty: all eight), for a curriculum that
    /// starts with the easiest relation (`headings=left/right`).
    pub headings: Vec<Heading>,
}

impl SynthOptions {
    /// The default scenes of run `seed`.
    pub fn seeded(seed: u64) -> SynthOptions {
        SynthOptions { seed, ..SynthOptions::default() }
    }
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: DEFAULT_SEED,
            lean: Lean::None,
            split: None,
            kinds: Vec::new(),
            distractors: true,
            answer_words: false,
            options: true,
            scale: 1.0,
            headings: Vec::new(),
        }
    }
}

/// `n` scenes held in memory (images as PNG bytes), for the `synth:N` spec:
/// training and evaluating on procedurally drawn data without writing it out.
pub fn in_memory(n: usize, o: &SynthOptions) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    let wanted = |i: usize| o.kinds.is_empty() || o.kinds.iter().any(|k| k == kind_name(i));
    for i in (0..n).filter(|&i| o.split.as_deref().is_none_or(|s| s == split_name(i)) && wanted(i)) {
        let mut item = scene_with(i, o);
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(item.image)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .context("encoding a synthetic scene")?;
        item.sample.images = vec![ImageSource::Bytes { bytes: png.into(), name: Some(format!("{}.png", item.sample.id)) }];
        item.sample.split = Some(split_name(i).to_string());
        if !o.options {
            item.sample.options.clear();
            item.sample.gold_letter = None;
            item.sample.answer_style = AnswerStyle::Word;
        }
        if o.answer_words || !o.options {
            let words = item.sample.gold_text.clone().unwrap_or_default();
            item.sample.metadata.insert(super::sample::TARGET_FIELD.into(), words.into());
        }
        out.push(item.sample);
    }
    Ok(out)
}

/// Writes `n` scenes drawn as `o` asks (seed, lean, distractors, scale) to
/// `dir`: `synth.jsonl` (generic format, 80% train / 20% test, one per group
/// of five) and `images/*.png`. Same options, same bytes.
pub fn write(dir: &Path, n: usize, o: &SynthOptions) -> Result<usize> {
    std::fs::create_dir_all(dir.join("images")).with_context(|| format!("creating {}", dir.display()))?;
    let out_path = dir.join("synth.jsonl");
    let tmp = dir.join("synth.jsonl.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    for i in 0..n {
        let mut item = scene_with(i, o);
        let img_path = dir.join("images").join(format!("{}.png", item.sample.id));
        item.image.save(&img_path).with_context(|| format!("writing {}", img_path.display()))?;
        item.sample.images = vec![ImageSource::Path(img_path)];
        item.sample.split = Some(split_name(i).to_string());
        writeln!(out, "{}", to_json(&item.sample, dir))?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &out_path)?;
    Ok(n)
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn test_split_is_a_fifth_and_covers_every_kind() {
        let test: Vec<usize> = (0..25).filter(|&i| is_test_index(i)).collect();
        assert_eq!(test.len(), 5);
        let mut kinds: Vec<usize> = test.iter().map(|i| i % 5).collect();
        kinds.sort();
        assert_eq!(kinds, vec![0, 1, 2, 3, 4]);
        assert!((0..12).any(is_test_index));
    }
}
