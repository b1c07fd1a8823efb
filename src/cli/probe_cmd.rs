//! `flipscope probe flip|boxed|adaptvis`: one change, asked side by side with the plain question.

use super::engine_args::EngineArgs;
use crate::counterfactual::{self, boxed::BoxSource, Answer};
use crate::data::visual_prompt::{load_box_file, BoxStyle};
use crate::data::{self, Sample};
use crate::engine::{intervene::Intervention, ResizePolicy};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ProbeCommon {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[arg(long)]
    pub data: String,
    /// One sample; without it the first --limit samples.
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    /// Mirror image, question, options and gold; is the answer mirrored too?
    Flip(ProbeCommon),
    /// A box around the reference object and "in the red bounding box" in the question.
    Boxed {
        #[command(flatten)]
        common: ProbeCommon,
        /// dataset | grounding | a JSON file of id -> boxes
        #[arg(long, default_value = "dataset")]
        boxes: String,
        #[arg(long, default_value = "red")]
        box_color: String,
        #[arg(long, default_value_t = 3.0)]
        box_width: f32,
    },
    /// Attention scaling on the image tokens (scaling:ALPHA or adaptvis[:THRESHOLD,W1,W2]).
    Adaptvis {
        #[command(flatten)]
        common: ProbeCommon,
        #[arg(long, default_value = "adaptvis")]
        intervention: String,
    },
}

fn samples(c: &ProbeCommon) -> Result<Vec<Sample>> {
    let ds = data::load(&c.data)?;
    Ok(match &c.id {
        Some(id) => match ds.samples.into_iter().find(|s| &s.id == id) {
            Some(s) => vec![s],
            None => bail!("no sample with id `{id}` in {}", c.data),
        },
        None => ds.samples.into_iter().take(c.limit).collect(),
    })
}

fn show(a: &Answer) -> String {
    let p = a.scores.probabilities()[a.scores.best];
    let dir = a.direction.map(|d| d.name().to_string()).unwrap_or_else(|| "-".into());
    format!("{} ({dir}, p={p:.2}, {})", a.label, a.verdict.label())
}

pub fn run(cmd: &ProbeCommand) -> Result<()> {
    let common = match cmd {
        ProbeCommand::Flip(c) => c,
        ProbeCommand::Boxed { common, .. } | ProbeCommand::Adaptvis { common, .. } => common,
    };
    let engine = common.engine.load()?;
    let policy = ResizePolicy::Auto;
    let samples = samples(common)?;
    match cmd {
        ProbeCommand::Flip(_) => {
            let mut done = Vec::new();
            for s in &samples {
                match counterfactual::flip::compare(&engine, s, &policy) {
                    Ok(p) => {
                        println!(
                            "{}\t{}\toriginal {}\tmirrored {}\t{}",
                            p.id,
                            p.category,
                            show(&p.original),
                            show(&p.mirrored),
                            if p.consistent { "consistent" } else { "INCONSISTENT" }
                        );
                        done.push(p);
                    }
                    Err(e) => eprintln!("{}: {e:#}", s.id),
                }
            }
            println!("\nflip consistency by category, beside the chance level the answers' letters alone give (95%)");
            for f in counterfactual::flip::by_category(&done).into_iter().map(crate::runs::report_model::FlipRow::from) {
                let level = &f.chance;
                let share = 100.0 * f.consistent as f64 / f.total.max(1) as f64;
                println!(
                    "  {:<50} {}/{} ({share:.1}%)   chance {:.1}% ({:.1}-{:.1})",
                    f.category,
                    f.consistent,
                    f.total,
                    100.0 * level.chance,
                    100.0 * level.lo,
                    100.0 * level.hi
                );
                if let Some(w) = f.at_chance() {
                    println!("  {w}");
                }
            }
        }
        ProbeCommand::Boxed { boxes, box_color, box_width, .. } => {
            let style = BoxStyle::parse(box_color, *box_width)?;
            let source = match boxes.as_str() {
                "dataset" => BoxSource::Dataset,
                "grounding" => BoxSource::Grounding,
                path => BoxSource::File(load_box_file(std::path::Path::new(path))?),
            };
            for s in &samples {
                match counterfactual::boxed::compare(&engine, s, &source, &style, &policy) {
                    Ok(p) => println!(
                        "{}\t{}\treference `{}` box ({:.0},{:.0},{:.0},{:.0})\tplain {}\tboxed {}\n\t{}",
                        p.id,
                        p.category,
                        p.phrase,
                        p.bbox.x0,
                        p.bbox.y0,
                        p.bbox.x1,
                        p.bbox.y1,
                        show(&p.plain),
                        show(&p.boxed),
                        p.boxed_question
                    ),
                    Err(e) => eprintln!("{}: {e:#}", s.id),
                }
            }
        }
        ProbeCommand::Adaptvis { intervention, .. } => {
            let iv = Intervention::parse(intervention)?;
            for s in &samples {
                let run = || -> Result<(Answer, Answer)> {
                    let images = crate::data::load_images(s)?;
                    let (_, plain) = counterfactual::ask(&engine, s, &images, &s.question, &policy, &Intervention::None)?;
                    let (_, scaled) = counterfactual::ask(&engine, s, &images, &s.question, &policy, &iv)?;
                    Ok((plain, scaled))
                };
                match run() {
                    Ok((plain, scaled)) => {
                        let r = scaled.scores.adapt.clone();
                        let detail = r
                            .map(|r| {
                                format!(
                                    "alpha {} confidence {} branch {:?}",
                                    r.alpha,
                                    r.confidence.map(|c| format!("{c:.3}")).unwrap_or("-".into()),
                                    r.branch
                                )
                            })
                            .unwrap_or_default();
                        println!("{}\t{}\tplain {}\tscaled {}\t{detail}", s.id, s.category, show(&plain), show(&scaled));
                    }
                    Err(e) => eprintln!("{}: {e:#}", s.id),
                }
            }
        }
    }
    Ok(())
}
