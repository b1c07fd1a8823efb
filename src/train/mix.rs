//! The training data mix: `SPEC[:WEIGHT][,SPEC[:WEIGHT]...]`, flip
//! augmentation with replay, and the seeded order of each epoch.
//!
//! A weight is how many times per epoch each sample of that dataset is
//! seen: 1 = once, 0.5 = a fresh random half each epoch, 2 = twice. With
//! flip augmentation every sample is seen mirrored (the new data) and a
//! `replay` fraction of the originals is kept, against forgetting.

use crate::data::{self, Dataset};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct MixPart {
    pub spec: String,
    pub weight: f64,
}

/// Splits a mix on the commas that start a new dataset (a spec's own
/// `#key=value,key=value` options keep theirs) and reads trailing weights.
pub fn parse_mix(text: &str) -> Result<Vec<MixPart>> {
    let mut specs: Vec<String> = Vec::new();
    for piece in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let continues_options = specs.last().is_some_and(|prev| prev.contains('#'))
            && piece.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        match specs.last_mut() {
            Some(prev) if continues_options => {
                prev.push(',');
                prev.push_str(piece);
            }
            _ => specs.push(piece.to_string()),
        }
    }
    if specs.is_empty() {
        bail!("--data: no dataset given");
    }
    specs
        .into_iter()
        .map(|s| {
            let (spec, weight) = split_weight(&s);
            if !(weight >= 0.0 && weight.is_finite()) {
                bail!("--data `{s}`: the weight must be a number >= 0");
            }
            Ok(MixPart { spec, weight })
        })
        .collect()
}

/// `SPEC:0.5` -> (SPEC, 0.5) when what precedes the colon is a spec on its
/// own (it has a kind, a path separator, a dot or exists), else weight 1.
fn split_weight(s: &str) -> (String, f64) {
    if let Some((head, tail)) = s.rsplit_once(':') {
        let tail_in_options = s.rfind('#').is_some_and(|h| h > head.len());
        let head_is_spec = head.contains(':') || head.contains('/') || head.contains('.') || std::path::Path::new(head).exists();
        if let (Ok(w), true, false) = (tail.parse::<f64>(), head_is_spec, tail_in_options) {
            return (head.to_string(), w);
        }
    }
    (s.to_string(), 1.0)
}

/// One training item: a sample of one part, plain or mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub part: usize,
    pub index: usize,
    pub flipped: bool,
}

/// The loaded mix.
pub struct Mix {
    pub parts: Vec<MixPart>,
    pub datasets: Vec<Dataset>,
    pub flip_augment: bool,
    pub replay: f64,
    pub seed: u64,
}

impl Mix {
    pub fn load(parts: Vec<MixPart>, flip_augment: bool, replay: f64, seed: u64) -> Result<Mix> {
        if !(0.0..=1.0).contains(&replay) {
            bail!("--replay must be between 0 and 1");
        }
        let mut datasets = Vec::new();
        for p in &parts {
            let ds = data::load(&p.spec).with_context(|| format!("--data `{}`", p.spec))?;
            if ds.samples.is_empty() {
                bail!("--data `{}`: no samples", p.spec);
            }
            datasets.push(ds);
        }
        Ok(Mix { parts, datasets, flip_augment, replay, seed })
    }

    pub fn sample(&self, item: Item) -> &crate::data::Sample {
        &self.datasets[item.part].samples[item.index]
    }

    /// The items of `epoch`, shuffled; the same for the same seed and epoch.
    pub fn epoch(&self, epoch: usize) -> Vec<Item> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut items = Vec::new();
        for (part, (p, ds)) in self.parts.iter().zip(&self.datasets).enumerate() {
            let n = ds.samples.len();
            let whole = p.weight.floor() as usize;
            let mut picks: Vec<usize> = (0..whole).flat_map(|_| 0..n).collect();
            let mut rest: Vec<usize> = (0..n).collect();
            rest.shuffle(&mut rng);
            picks.extend(rest.into_iter().take(((p.weight - whole as f64) * n as f64).round() as usize));
            for index in picks {
                if self.flip_augment {
                    items.push(Item { part, index, flipped: true });
                    if rng.random::<f64>() < self.replay {
                        items.push(Item { part, index, flipped: false });
                    }
                } else {
                    items.push(Item { part, index, flipped: false });
                }
            }
        }
        items.shuffle(&mut rng);
        items
    }

    /// Items per epoch (expected, for step counts and ETA).
    pub fn epoch_len(&self) -> usize {
        self.epoch(0).len()
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> =
            self.parts.iter().zip(&self.datasets).map(|(p, d)| format!("{} ({} samples) x{}", p.spec, d.samples.len(), p.weight)).collect();
        let aug = if self.flip_augment { format!(" + horizontal flips, replay {}", self.replay) } else { String::new() };
        format!("{}{aug}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_keeps_spec_options() {
        let m = parse_mix("synth:200#seed=3,lean=left:0.5,generic:a/b.jsonl#split=train,root=x,c.jsonl:2,synth:40").unwrap();
        let got: Vec<(&str, f64)> = m.iter().map(|p| (p.spec.as_str(), p.weight)).collect();
        assert_eq!(
            got,
            vec![("synth:200#seed=3,lean=left", 0.5), ("generic:a/b.jsonl#split=train,root=x", 1.0), ("c.jsonl", 2.0), ("synth:40", 1.0)]
        );
        assert!(parse_mix("").is_err());
        assert!(parse_mix("a.jsonl:-1").unwrap_err().to_string().contains(">= 0"));
    }

    #[test]
    fn epochs_are_seeded_weighted_and_flip_with_replay() {
        let parts = parse_mix("synth:20#split=train:1,synth:20#seed=9,split=train:0.5").unwrap();
        let mix = Mix::load(parts.clone(), false, 1.0, 1).unwrap();
        let e0 = mix.epoch(0);
        assert_eq!(e0.len(), 16 + 8);
        assert_eq!(e0, mix.epoch(0));
        assert_ne!(e0, mix.epoch(1));
        assert_eq!(e0.iter().filter(|i| i.part == 1).count(), 8);
        let flip = Mix::load(parts, true, 0.5, 1).unwrap();
        let items = flip.epoch(0);
        let flipped = items.iter().filter(|i| i.flipped).count();
        assert_eq!(flipped, 24);
        let replayed = items.len() - flipped;
        assert!(replayed > 3 && replayed < 21, "{replayed}");
    }
}
