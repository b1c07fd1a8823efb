//! The helper thread that prepares examples (decode, flip, resize,
//! tokenise) while the engine trains on the previous batch.

use super::example::{self, TrainExample};
use super::mix::{Item, Mix};
use crate::engine::Processor;
use crate::eval::PromptTemplate;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Micro-batches as the helper thread prepares them.
pub(super) struct Micro {
    pub epoch: usize,
    /// Index of this micro-batch within its epoch.
    pub index: usize,
    pub examples: Vec<TrainExample>,
    /// GRPO's prompts (no answer: the policy samples its own).
    pub prompts: Vec<(crate::data::Sample, crate::engine::PreparedPrompt)>,
    pub errors: Vec<String>,
}

pub(super) fn spawn_producer(
    mix: Arc<Mix>,
    processor: Processor,
    template: PromptTemplate,
    batch: usize,
    start: (usize, usize),
    method: super::grpo::Method,
) -> Receiver<Micro> {
    let (tx, rx) = sync_channel::<Micro>(3);
    std::thread::spawn(move || {
        for epoch in start.0.. {
            let items: Vec<Item> = mix.epoch(epoch);
            let skip = if epoch == start.0 { start.1 } else { 0 };
            for (index, chunk) in items.chunks(batch).enumerate().skip(skip) {
                let (mut examples, mut prompts, mut errors) = (Vec::new(), Vec::new(), Vec::new());
                for item in chunk {
                    let sample = mix.sample(*item);
                    let built = match method {
                        super::grpo::Method::Sft => example::build(&processor, &template, sample, item.flipped).map(|e| examples.push(e)),
                        super::grpo::Method::Grpo => {
                            example::build_prompt(&processor, &template, sample, item.flipped).map(|p| prompts.push(p))
                        }
                    };
                    if let Err(e) = built {
                        errors.push(format!("skipped {}: {e:#}", sample.id));
                    }
                }
                if tx.send(Micro { epoch, index, examples, prompts, errors }).is_err() {
                    return;
                }
            }
        }
    });
    rx
}
