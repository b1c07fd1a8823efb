//! What the Samples pane shows: filter chips, sort order and named views.
//! All pure functions over samples and their records.

use crate::data::Sample;
use crate::runs::Record;
use crate::spatial::{Direction, ErrorKind, Verdict};
use serde::{Deserialize, Serialize};

/// A sample's outcome in the current run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    // Views saved before verdicts were named in words said "right".
    #[serde(alias = "right")]
    Correct,
    Wrong,
    Unparsed,
    Failed,
    /// Asked, but the sample has no gold to judge against.
    Unjudged,
    NotRun,
}

impl Status {
    pub const ALL: [Status; 6] = [Status::Correct, Status::Wrong, Status::Unparsed, Status::Failed, Status::Unjudged, Status::NotRun];

    /// The record's verdict, as a chip can select it.
    pub fn of(record: Option<&Record>) -> Status {
        match record.map(|r| &r.verdict) {
            None => Status::NotRun,
            Some(Verdict::Correct) => Status::Correct,
            Some(Verdict::Wrong(_)) => Status::Wrong,
            Some(Verdict::Unparsed) => Status::Unparsed,
            Some(Verdict::Failed(_)) => Status::Failed,
            Some(Verdict::Unjudged) => Status::Unjudged,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Correct => "correct",
            Status::Wrong => "wrong",
            Status::Unparsed => "unparsed",
            Status::Failed => "failed",
            Status::Unjudged => "not judged",
            Status::NotRun => "not run",
        }
    }

    /// One cell wide, for the list: the verdict's glyph.
    pub fn glyph(self) -> &'static str {
        match self {
            Status::Correct => Verdict::Correct.glyph(),
            Status::Wrong => Verdict::Wrong(ErrorKind::Other).glyph(),
            Status::Unparsed => Verdict::Unparsed.glyph(),
            Status::Failed => "!",
            Status::Unjudged | Status::NotRun => "·",
        }
    }
}

/// One filter chip. All chips must hold for a sample to show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Filter {
    Category(String),
    Status(Status),
    ErrorKind(ErrorKind),
    /// The gold direction.
    Gold(Direction),
    /// Case-insensitive text in the id, question, category or options.
    Text(String),
    /// One confusion cell: gold and predicted direction (none: unparsed).
    Cell {
        gold: Direction,
        predicted: Option<Direction>,
    },
}

impl Filter {
    pub fn label(&self) -> String {
        match self {
            Filter::Category(c) => format!("category: {c}"),
            Filter::Status(s) => format!("status: {}", s.name()),
            Filter::ErrorKind(k) => format!("error: {}", k.label()),
            Filter::Gold(g) => format!("gold: {g}"),
            Filter::Text(t) => format!("search: {t}"),
            Filter::Cell { gold, predicted } => format!("cell: {gold} → {}", predicted.map_or("unparsed".into(), |p| p.name())),
        }
    }

    /// Same kind of chip (a new one replaces the old).
    pub fn same_kind(&self, other: &Filter) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    pub fn accepts(&self, s: &Sample, r: Option<&Record>) -> bool {
        match self {
            Filter::Category(c) => &s.category == c,
            Filter::Status(st) => Status::of(r) == *st,
            Filter::ErrorKind(k) => r.and_then(Record::error_kind) == Some(*k),
            Filter::Gold(g) => s.gold_direction == Some(*g),
            Filter::Text(t) => {
                let t = t.to_lowercase();
                [&s.id, &s.question, &s.category].iter().any(|f| f.to_lowercase().contains(&t))
                    || s.options.iter().any(|o| o.text.to_lowercase().contains(&t))
            }
            Filter::Cell { gold, predicted } => r.is_some_and(|r| r.gold_direction == Some(*gold) && r.predicted_direction == *predicted),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Dataset,
    Id,
    Category,
    Status,
    /// The probability the model gave its own answer, least sure first.
    Confidence,
    Gold,
}

impl SortKey {
    const ORDER: [SortKey; 6] = [SortKey::Dataset, SortKey::Id, SortKey::Category, SortKey::Status, SortKey::Confidence, SortKey::Gold];

    pub fn next(self) -> SortKey {
        let i = Self::ORDER.iter().position(|k| *k == self).unwrap_or(0);
        Self::ORDER[(i + 1) % Self::ORDER.len()]
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Dataset => "dataset order",
            SortKey::Id => "id",
            SortKey::Category => "category",
            SortKey::Status => "status",
            SortKey::Confidence => "confidence",
            SortKey::Gold => "gold",
        }
    }
}

/// The record's option log-probabilities as probabilities over the options.
pub fn option_probabilities(r: &Record) -> Vec<(String, f32)> {
    let m = r.option_logprobs.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = r.option_logprobs.iter().map(|x| (x.1 - m).exp()).sum();
    r.option_logprobs.iter().map(|(l, lp)| (l.clone(), (lp - m).exp() / total)).collect()
}

/// The probability of the predicted option among the options, from the record.
pub fn confidence(r: Option<&Record>) -> Option<f32> {
    let r = r?;
    let pred = r.predicted_letter.as_deref()?;
    option_probabilities(r).into_iter().find(|x| x.0 == pred).map(|x| x.1)
}

/// A named set of chips and a sort, saved in `views.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedView {
    pub name: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub sort: SortKey,
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct ViewsFile {
    #[serde(default, rename = "view")]
    views: Vec<SavedView>,
}

pub fn parse_views(text: &str, origin: &str) -> anyhow::Result<Vec<SavedView>> {
    use anyhow::Context;
    Ok(toml::from_str::<ViewsFile>(text).with_context(|| format!("{origin}: invalid saved views"))?.views)
}

pub fn views_toml(views: &[SavedView]) -> String {
    toml::to_string_pretty(&ViewsFile { views: views.to_vec() }).unwrap_or_default()
}

/// Indices of the samples that pass every chip, in the chosen order.
pub fn visible(
    samples: &[Sample],
    record: &dyn Fn(usize) -> Option<usize>,
    records: &[Record],
    filters: &[Filter],
    sort: SortKey,
    reverse: bool,
) -> Vec<usize> {
    let rec = |i: usize| record(i).map(|k| &records[k]);
    let mut out: Vec<usize> = (0..samples.len()).filter(|&i| filters.iter().all(|f| f.accepts(&samples[i], rec(i)))).collect();
    match sort {
        SortKey::Dataset => {}
        SortKey::Id => out.sort_by(|&a, &b| samples[a].id.cmp(&samples[b].id)),
        SortKey::Category => out.sort_by(|&a, &b| samples[a].category.cmp(&samples[b].category)),
        SortKey::Status => out.sort_by_key(|&i| Status::of(rec(i))),
        SortKey::Confidence => out.sort_by(|&a, &b| {
            let (x, y) = (confidence(rec(a)).unwrap_or(2.0), confidence(rec(b)).unwrap_or(2.0));
            x.total_cmp(&y)
        }),
        SortKey::Gold => out.sort_by_key(|&i| samples[i].gold_direction.map(|d| d.sort_key())),
    }
    if reverse {
        out.reverse();
    }
    out
}
