//! One supervised example: the eval prompt (same template, same chat
//! layout) followed by the assistant's answer, with labels on the answer
//! tokens and `<|im_end|>` only; everything else is -100.

use crate::data::flip::flip_sample;
use crate::data::load_images;
use crate::data::Sample;
use crate::engine::{ModelInputs, PreparedPrompt, Processor};
use crate::eval::PromptTemplate;
use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};

pub const IGNORE: i64 = -100;

pub use crate::data::sample::TARGET_FIELD;

pub struct TrainExample {
    pub id: String,
    /// Prompt and answer tokens with positions continuing after the prompt.
    pub tokens: PreparedPrompt,
    pub labels: Vec<i64>,
}

impl TrainExample {
    pub fn answer_tokens(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

/// What the assistant should say: a distilled reply if the sample has one,
/// else the gold option's letter (what the eval scores), else yes/no.
pub fn target_text(s: &Sample) -> Result<String> {
    if let Some(t) = s.metadata.get(TARGET_FIELD).and_then(|v| v.as_str()) {
        return Ok(t.to_string());
    }
    if let Some(l) = s.gold_letter {
        return Ok(l.to_string());
    }
    match s.gold_text.as_deref() {
        Some(t) if !t.trim().is_empty() => {
            let mut c = t.trim().chars();
            Ok(c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default())
        }
        _ => bail!("sample {}: no gold answer to train on", s.id),
    }
}

/// The prompt of `sample` as eval asks it, mirrored (image and left/right
/// words) when `flipped`; the sample returned is the one asked.
pub fn build_prompt(processor: &Processor, template: &PromptTemplate, sample: &Sample, flipped: bool) -> Result<(Sample, PreparedPrompt)> {
    let (sample, images) = if flipped {
        flip_sample(sample).with_context(|| format!("sample {}: flipping", sample.id))?
    } else {
        (sample.clone(), load_images(sample)?)
    };
    let text = template.render(&sample.question, &sample);
    let prompt = processor.prepare(&images, &text, &template.resize).with_context(|| format!("sample {}", sample.id))?;
    Ok((sample, prompt))
}

/// Builds the example for `sample`, mirrored (image and left/right words) when `flipped`.
pub fn build(processor: &Processor, template: &PromptTemplate, sample: &Sample, flipped: bool) -> Result<TrainExample> {
    let (sample, prompt) = build_prompt(processor, template, sample, flipped)?;
    let answer = processor.tokenizer.encode(&format!("{}<|im_end|>", target_text(&sample)?))?;
    let newline = processor.tokenizer.encode("\n")?;
    Ok(with_answer(prompt, &answer, &newline, &sample.id))
}

/// Appends answer tokens (labelled) and trailing tokens (not) to a prompt;
/// text after the last image continues the position count on all three axes.
pub fn with_answer(prompt: PreparedPrompt, answer: &[i64], trailing: &[i64], id: &str) -> TrainExample {
    let mut labels = vec![IGNORE; prompt.len()];
    labels.extend(answer);
    labels.extend(trailing.iter().map(|_| IGNORE));
    let tokens = prompt.extended(&[answer, trailing].concat());
    TrainExample { id: id.to_string(), tokens, labels }
}

/// A left-padded batch and its labels [B, L] (padding labelled -100).
pub fn collate(examples: &[TrainExample], pad_id: i64, device: Device) -> (ModelInputs, Tensor) {
    let prompts: Vec<&PreparedPrompt> = examples.iter().map(|e| &e.tokens).collect();
    let inputs = ModelInputs::collate(&prompts, pad_id, device);
    let l = examples.iter().map(|e| e.labels.len()).max().unwrap_or(0);
    let mut labels = vec![IGNORE; examples.len() * l];
    for (i, e) in examples.iter().enumerate() {
        let off = l - e.labels.len();
        labels[i * l + off..(i + 1) * l].copy_from_slice(&e.labels);
    }
    let labels = Tensor::from_slice(&labels).reshape([examples.len() as i64, l as i64]).to_device(device);
    (inputs, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_prefer_distilled_then_letter_then_text() {
        let mut s = Sample::new("1", "t");
        assert!(target_text(&s).is_err());
        s.gold_text = Some("yes".into());
        assert_eq!(target_text(&s).unwrap(), "Yes");
        s.set_options(["left", "right"]).unwrap();
        s.set_gold_letter('B');
        assert_eq!(target_text(&s).unwrap(), "B");
        s.metadata.insert(TARGET_FIELD.into(), "The cup is right of the mug. Answer: B".into());
        assert!(target_text(&s).unwrap().starts_with("The cup"));
    }

    #[test]
    fn answer_continues_positions_and_labels_only_the_answer() {
        let prompt = PreparedPrompt {
            chat_text: String::new(),
            input_ids: vec![5, 6, 7],
            images: vec![],
            positions: [vec![0, 1, 1], vec![0, 1, 2], vec![0, 1, 3]],
            rope_delta: 1,
        };
        let ex = with_answer(prompt, &[40, 2], &[9], "x");
        assert_eq!(ex.tokens.input_ids, vec![5, 6, 7, 40, 2, 9]);
        assert_eq!(ex.tokens.positions[1], vec![0, 1, 2, 4, 5, 6]);
        assert_eq!(ex.labels, vec![IGNORE, IGNORE, IGNORE, 40, 2, IGNORE]);
        assert_eq!(ex.answer_tokens(), 2);
        let short = with_answer(
            PreparedPrompt {
                chat_text: String::new(),
                input_ids: vec![1],
                images: vec![],
                positions: [vec![0], vec![0], vec![0]],
                rope_delta: 0,
            },
            &[3],
            &[],
            "y",
        );
        let (inputs, labels) = collate(&[ex, short], 0, Device::Cpu);
        assert_eq!(inputs.input_ids.size(), vec![2, 6]);
        let row: Vec<i64> = Vec::try_from(labels.get(1)).unwrap();
        assert_eq!(row, vec![IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 3]);
    }
}
