//! The logit lens: every layer's residual stream read through the final
//! norm and lm_head, at the decision position (a decision curve) and at
//! each image token (what the image tokens already "say").

use super::decision::{Candidate, Decision};
use super::pass::{lens, Pass};
use crate::engine::Engine;
use anyhow::Result;
use tch::{Kind, Tensor};

/// Words whose probability the lens reads at every image token.
const IMAGE_ROWS_PER_CHUNK: i64 = 64;
pub const LENS_WORDS: [&str; 8] = ["left", "right", "front", "back", "above", "below", "top", "bottom"];

pub struct LogitLens {
    pub candidates: Vec<Candidate>,
    /// [L][candidates]: each candidate's probability at the decision position, per layer.
    pub curve: Vec<Vec<f32>>,
    /// The candidate the last layer picks.
    pub answer: Option<usize>,
    /// The first layer from which that answer leads the candidates at every later layer.
    pub decided_at: Option<usize>,
    /// [L][top-k] the lens's top tokens at the decision position (id, probability).
    pub top: Vec<Vec<(i64, f32)>>,
    /// The words read at image tokens (those that are one token each) and their ids.
    pub words: Vec<(String, i64)>,
    /// [L, image tokens, words] probabilities at each image token.
    pub image_words: Tensor,
    /// [L, image tokens] the lens's top token at each image token.
    pub image_top: Tensor,
    /// [L, T, D] f32: each decoder layer's output, before the final norm.
    pub resid_post: Tensor,
    /// [L, V] f32: final norm + lm_head of `resid_post[:, -1]` (logits).
    pub lens_last: Tensor,
}

/// The first layer from which `answer` is the argmax of every later row of `curve`.
pub fn decided_at(curve: &[Vec<f32>], answer: usize) -> Option<usize> {
    let leads = |row: &Vec<f32>| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i) == Some(answer);
    let mut at = None;
    for (l, row) in curve.iter().enumerate().rev() {
        if !leads(row) {
            break;
        }
        at = Some(l);
    }
    at
}

/// The lens over `decision`'s prompt.
pub fn logit_lens(engine: &Engine, decision: &Decision, top_k: usize) -> Result<LogitLens> {
    logit_lens_of(engine, decision, &Pass::run(engine, &decision.prompt)?, top_k)
}

/// The lens over `pass`, the traced run of `decision`'s prompt.
pub fn logit_lens_of(engine: &Engine, decision: &Decision, pass: &Pass, top_k: usize) -> Result<LogitLens> {
    let _guard = tch::no_grad_guard();
    let model = &engine.model;
    let resid_post = Tensor::cat(&pass.traced.resid_post, 0).to_kind(Kind::Float); // [L, T, D]
    let n_layers = pass.layers() as i64;
    let last = Tensor::stack(&pass.traced.resid_post.iter().map(|o| o.get(0).get(-1)).collect::<Vec<_>>(), 0);
    let lens_last = lens(model, &last); // [L, V]
    let probs = lens_last.softmax(-1, Kind::Float);
    let mut candidates = decision.candidates.clone();
    if candidates.is_empty() {
        // No options: follow the model's own final answer.
        let id = probs.get(n_layers - 1).argmax(0, false).int64_value(&[]);
        candidates.push(Candidate { label: engine.processor.tokenizer.decode(&[id], false)?, token: id, direction: None });
    }
    let ids = Tensor::from_slice(&candidates.iter().map(|c| c.token).collect::<Vec<_>>()).to_device(probs.device());
    let curve: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(probs.index_select(1, &ids).to_device(tch::Device::Cpu))?;
    let answer = curve.last().and_then(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i));
    let decided = answer.and_then(|a| decided_at(&curve, a));
    // At most the whole vocabulary; none when none are asked for.
    let k = top_k.min(probs.size()[1] as usize);
    let top = if k == 0 {
        vec![Vec::new(); n_layers as usize]
    } else {
        let (vals, idx) = probs.topk(k as i64, -1, true, true);
        let (vals, idx) =
            (Vec::<Vec<f32>>::try_from(vals.to_device(tch::Device::Cpu))?, Vec::<Vec<i64>>::try_from(idx.to_device(tch::Device::Cpu))?);
        idx.into_iter().zip(vals).map(|(i, v)| i.into_iter().zip(v).collect()).collect()
    };
    // The image tokens, read at every layer.
    let tok = &engine.processor.tokenizer;
    let words: Vec<(String, i64)> = LENS_WORDS.iter().filter_map(|w| tok.single_token(w).map(|id| (w.to_string(), id))).collect();
    let image_rows = Tensor::from_slice(&pass.regions.image.iter().map(|&p| p as i64).collect::<Vec<_>>()).to_device(resid_post.device());
    let (image_words, image_top) = if pass.regions.image.is_empty() {
        (
            Tensor::zeros([n_layers, 0, words.len() as i64], (Kind::Float, tch::Device::Cpu)),
            Tensor::zeros([n_layers, 0], (Kind::Int64, tch::Device::Cpu)),
        )
    } else {
        let word_ids = Tensor::from_slice(&words.iter().map(|w| w.1).collect::<Vec<_>>()).to_device(resid_post.device());
        let mut per_layer = Vec::new();
        let mut tops = Vec::new();
        for out in &pass.traced.resid_post {
            let rows = out.get(0).index_select(0, &image_rows);
            // A chunk of rows at a time: N x vocab probabilities of a large model would not fit.
            let (mut w, mut t) = (Vec::new(), Vec::new());
            for chunk in rows.split(IMAGE_ROWS_PER_CHUNK, 0) {
                let p = lens(model, &chunk).softmax(-1, Kind::Float);
                t.push(p.argmax(-1, false));
                w.push(p.index_select(1, &word_ids));
            }
            tops.push(Tensor::cat(&t, 0));
            per_layer.push(Tensor::cat(&w, 0));
        }
        (Tensor::stack(&per_layer, 0).to_device(tch::Device::Cpu), Tensor::stack(&tops, 0).to_device(tch::Device::Cpu))
    };
    Ok(LogitLens {
        candidates,
        curve,
        answer,
        decided_at: decided,
        top,
        words,
        image_words,
        image_top,
        resid_post: resid_post.to_device(tch::Device::Cpu),
        lens_last: lens_last.to_device(tch::Device::Cpu),
    })
}

impl LogitLens {
    /// `resid_post` and `lens_last` as the dump file holds them.
    pub fn dump(&self, path: &std::path::Path) -> Result<()> {
        super::write_dump(path, &[("resid_post", &self.resid_post), ("lens_last", &self.lens_last)])
    }
}

#[cfg(test)]
mod tests {
    use super::decided_at;

    #[test]
    fn the_decision_layer_is_where_the_answer_leads_for_good() {
        let curve = vec![vec![0.6, 0.4], vec![0.3, 0.7], vec![0.55, 0.45], vec![0.2, 0.8], vec![0.1, 0.9]];
        assert_eq!(decided_at(&curve, 1), Some(3), "it led at layer 1 but lost the lead at 2");
        assert_eq!(decided_at(&curve, 0), None, "the final layer does not pick 0");
        assert_eq!(decided_at(&[vec![0.1, 0.9]], 1), Some(0));
    }
}
