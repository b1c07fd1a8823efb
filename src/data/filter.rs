//! Which samples a command takes: `--filter` conditions, parsed once into a
//! type at the command line, and the one "load, filter, limit" every batch
//! command runs.

use super::Sample;
use anyhow::{bail, Result};

/// What a condition reads of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterField {
    Category,
    Id,
    /// The gold answer: its option letter or its direction (`gold=A`,
    /// `gold=left`), the TUI's gold filter being a direction.
    Gold,
    Dataset,
}

impl FilterField {
    fn parse(s: &str) -> Option<FilterField> {
        Some(match s {
            "category" => FilterField::Category,
            "id" => FilterField::Id,
            "gold" => FilterField::Gold,
            "dataset" => FilterField::Dataset,
            _ => return None,
        })
    }

    /// The sample's values, lower-cased (the gold's letter and direction).
    fn of(self, s: &Sample) -> Vec<String> {
        match self {
            FilterField::Category => vec![s.category.to_lowercase()],
            FilterField::Id => vec![s.id.to_lowercase()],
            FilterField::Gold => s
                .gold_letter
                .map(|l| l.to_ascii_lowercase().to_string())
                .into_iter()
                .chain(s.gold_direction.map(|d| d.name().to_string()))
                .collect(),
            FilterField::Dataset => vec![s.dataset.to_lowercase()],
        }
    }
}

/// `FIELD=VALUE` (equal) or `FIELD~TEXT` (contains), ignoring case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub field: FilterField,
    pub contains: bool,
    /// Lower-cased.
    pub value: String,
}

/// Comma-separated conditions that must all hold (`category~person,gold=A`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleFilter {
    pub conditions: Vec<Condition>,
}

impl SampleFilter {
    /// Parses `expr`; a clap value parser.
    pub fn parse(expr: &str) -> Result<SampleFilter, String> {
        let mut conditions = Vec::new();
        for c in expr.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (field, contains, value) = match (c.split_once('~'), c.split_once('=')) {
                (Some((f, v)), _) => (f, true, v),
                (None, Some((f, v))) => (f, false, v),
                (None, None) => return Err(format!("filter `{c}` is not FIELD=VALUE or FIELD~TEXT")),
            };
            let field = FilterField::parse(field.trim())
                .ok_or_else(|| format!("filter field `{}` is not category, id, gold or dataset", field.trim()))?;
            conditions.push(Condition { field, contains, value: value.trim().to_lowercase() });
        }
        Ok(SampleFilter { conditions })
    }

    pub fn keeps(&self, s: &Sample) -> bool {
        self.conditions.iter().all(|c| c.field.of(s).iter().any(|have| if c.contains { have.contains(&c.value) } else { *have == c.value }))
    }

    pub fn apply(&self, samples: Vec<Sample>) -> Vec<Sample> {
        samples.into_iter().filter(|s| self.keeps(s)).collect()
    }
}

/// The samples of the dataset `spec` that `filter` keeps, at most `limit`;
/// none left is an error naming the spec.
pub fn select(spec: &str, filter: Option<&SampleFilter>, limit: Option<usize>) -> Result<Vec<Sample>> {
    let mut samples = super::load(spec)?.samples;
    if let Some(f) = filter {
        samples = f.apply(samples);
    }
    samples.truncate(limit.unwrap_or(usize::MAX));
    if samples.is_empty() {
        bail!("no samples in {spec} after --filter/--limit");
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_into_fields_and_all_must_hold() {
        let f = SampleFilter::parse("category~Cam, gold=a").unwrap();
        assert_eq!(f.conditions.len(), 2);
        let mut s = Sample::new("x1", "q");
        s.category = "camera".into();
        s.gold_letter = Some('A');
        assert!(f.keeps(&s));
        s.gold_letter = Some('B');
        assert!(!f.keeps(&s));
        // The CLI's gold is the TUI's too: a direction names it as well as a letter.
        s.gold_direction = crate::spatial::Direction::from_name("front-left");
        assert!(SampleFilter::parse("gold=front-left").unwrap().keeps(&s));
        assert!(SampleFilter::parse("gold~left").unwrap().keeps(&s) && !SampleFilter::parse("gold=left").unwrap().keeps(&s));
        assert!(SampleFilter::parse("").unwrap().keeps(&s), "no condition keeps everything");
        assert!(SampleFilter::parse("colour=red").unwrap_err().contains("`colour` is not category, id, gold or dataset"));
        assert!(SampleFilter::parse("category").unwrap_err().contains("is not FIELD=VALUE or FIELD~TEXT"));
    }
}
