//! `flipscope extract`: how an output would be read, and why. The same
//! rules eval uses, so a surprising record can be checked by hand.

use crate::data::{AnswerOption, AnswerStyle, Sample};
use crate::eval::PromptTemplate;
use crate::spatial::extract::Extraction;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::Read;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExtractStyle {
    /// An option letter (the default).
    #[default]
    Letter,
    /// ViewSpatial's official rule: the first A-D on the last line.
    Viewspatial,
    YesNo,
    /// A direction named in words.
    Direction,
    Number,
    /// A spatial relation phrase (VSR's vocabulary).
    Relation,
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The options: letters (`A,B,C,D`) or letters with their texts (`A=left,B=right`).
    #[arg(long, default_value = "A,B,C,D")]
    pub options: String,
    #[arg(long, value_enum, default_value_t)]
    pub style: ExtractStyle,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The model's output; `-` or nothing reads stdin.
    pub text: Option<String>,
}

/// `A,B` or `A=left,B=right` as (letter, text) pairs.
fn parse_options(spec: &str) -> Result<Vec<(char, String)>> {
    let mut out: Vec<(char, String)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (letter, text) = item.split_once('=').map(|(l, t)| (l.trim(), t.trim())).unwrap_or((item, ""));
        let mut chars = letter.chars();
        match (chars.next(), chars.next()) {
            (Some(l), None) if l.is_ascii_uppercase() => {
                if out.iter().any(|(o, _)| *o == l) {
                    bail!("--options: `{l}` is given twice");
                }
                out.push((l, text.to_string()));
            }
            _ => bail!("--options: `{letter}` is not a capital letter (write A,B,C or A=left,B=right)"),
        }
    }
    if out.is_empty() {
        bail!("--options: no options");
    }
    Ok(out)
}

/// Reads `text` as eval's judge reads it (`eval::judge::extract`, `<answer>`
/// tags included), for a sample shaped like `args` says.
pub fn read(args: &ExtractArgs, text: &str) -> Result<Extraction> {
    let mut sample = Sample::new("extract", "extract");
    let prompt = match args.style {
        ExtractStyle::Viewspatial => PromptTemplate::parse("viewspatial")?,
        _ => PromptTemplate::default_prompt(),
    };
    match args.style {
        ExtractStyle::Letter | ExtractStyle::Viewspatial => {
            sample.options = parse_options(&args.options)?.into_iter().map(|(l, t)| AnswerOption::new(l, t)).collect();
        }
        ExtractStyle::YesNo => sample.answer_style = AnswerStyle::YesNo,
        ExtractStyle::Number => sample.answer_style = AnswerStyle::Number,
        ExtractStyle::Relation => sample.answer_style = AnswerStyle::Relation,
        // The judge reads a direction in words for a question with a gold direction; which one does not matter to the reading.
        ExtractStyle::Direction => {
            sample.answer_style = AnswerStyle::Word;
            sample.gold_direction = crate::spatial::parse_option("front");
        }
    }
    Ok(crate::eval::judge::extract(&prompt, &sample, text))
}

pub fn run(args: &ExtractArgs) -> Result<()> {
    let text = match args.text.as_deref() {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut s = String::new();
            // Bounded: an output is a few kilobytes, not a stream without end.
            let limit = crate::fsutil::max_read_bytes();
            std::io::stdin().take(limit + 1).read_to_string(&mut s).context("reading the output from stdin")?;
            if s.len() as u64 > limit {
                bail!(
                    "stdin holds more than {} MiB; an answer to read is far shorter (FLIPSCOPE_MAX_READ_MB raises the limit)",
                    limit >> 20
                );
            }
            s
        }
    };
    let ex = read(args, &text)?;
    let span = ex.span.clone().filter(|r| text.get(r.clone()).is_some());
    if args.json {
        let v = serde_json::json!({
            "answer": ex.answer,
            "rule": ex.rule.name(),
            "span": span.as_ref().map(|r| [r.start, r.end]),
            "span_text": span.as_ref().map(|r| &text[r.clone()]),
        });
        println!("{v}");
    } else {
        println!("answer  {}", ex.answer.as_deref().unwrap_or("-"));
        println!("rule    {}", ex.rule.name());
        match span {
            Some(r) => println!("span    {}..{}  {:?}", r.start, r.end, &text[r.clone()]),
            None => println!("span    -"),
        }
    }
    Ok(())
}
