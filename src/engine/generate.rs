//! Decoding and option scoring on a loaded model.
//!
//! `generate` streams each token through a callback as it is produced (the
//! TUI turns that into events) and returns per-token log-probs and the first
//! token's top-k. `score_options` is the one-forward multiple-choice path.

use super::intervene::{AdaptReport, Intervention};
use super::processor::{ModelInputs, PreparedPrompt};
use super::text::Rows;
use super::Engine;
use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use tch::{Kind, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// None: greedy.
    pub sampling: Option<Sampling>,
    /// Stop ids; None means the checkpoint's end-of-sequence ids.
    pub stop_ids: Option<Vec<i64>>,
    /// How many alternatives of the first token to report.
    pub first_token_top_k: usize,
    /// Attention scaling on the image tokens during prefill (AdaptVis).
    pub intervention: Intervention,
    /// Token ids never chosen (their logits are -inf): GRPO's rollouts
    /// suppress the vision placeholders, which a completion must not hold.
    pub suppress: Vec<i64>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            sampling: None,
            stop_ids: None,
            first_token_top_k: 5,
            intervention: Intervention::None,
            suppress: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopToken {
    pub id: i64,
    pub token: String,
    pub logprob: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    StopToken,
    MaxTokens,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct Generation {
    /// Generated ids, without the stop token.
    pub tokens: Vec<i64>,
    pub text: String,
    /// Log-prob of each chosen token (under the unmodified distribution).
    pub logprobs: Vec<f32>,
    pub first_token_top: Vec<TopToken>,
    pub stop: StopReason,
    /// Alpha, confidence and branch when an intervention ran.
    pub adapt: Option<AdaptReport>,
}

/// One streamed token.
#[derive(Clone, Debug)]
pub struct TokenStep<'a> {
    pub sample: usize,
    pub token: i64,
    /// Text added by this token (may be empty until a multi-byte character completes).
    pub delta: &'a str,
    pub logprob: f32,
}

/// What the callback tells the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Log-probabilities of each option's token at the answer position.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionScores {
    pub labels: Vec<String>,
    pub token_ids: Vec<i64>,
    pub logprobs: Vec<f32>,
    pub best: usize,
    /// Alpha, confidence and branch when an intervention ran.
    pub adapt: Option<AdaptReport>,
}

impl OptionScores {
    /// Scores of `labels`, the best being the highest log-prob. A NaN or an
    /// infinity is an error, never a "best" option: it means the model's
    /// numbers broke (a bad config value, bad weights), not that it chose.
    pub fn new(labels: Vec<String>, token_ids: Vec<i64>, logprobs: Vec<f32>, adapt: Option<AdaptReport>) -> Result<OptionScores> {
        if let Some((label, lp)) = labels.iter().zip(&logprobs).find(|(_, lp)| !lp.is_finite()) {
            bail!("{}", non_finite(&format!("option {label}'s log-prob is {lp}")));
        }
        let best = logprobs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
        Ok(OptionScores { labels, token_ids, logprobs, best, adapt })
    }

    /// Probabilities renormalised over the options only.
    pub fn probabilities(&self) -> Vec<f32> {
        let m = self.logprobs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = self.logprobs.iter().map(|l| (l - m).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    }
    pub fn best_label(&self) -> &str {
        &self.labels[self.best]
    }
}

/// The message for scores that are not numbers.
fn non_finite(what: &str) -> String {
    format!("the model's output is not finite ({what}); its weights or config (rms_norm_eps, rope_theta) are broken")
}

fn sample_token(logprobs: &[f32], s: &Sampling, rng: &mut rand_chacha::ChaCha8Rng) -> usize {
    let t = s.temperature.max(1e-5) as f32;
    let m = logprobs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(usize, f32)> = logprobs.iter().enumerate().map(|(i, &l)| (i, ((l - m) / t).exp())).collect();
    let mut cut = probs.len();
    // The nucleus needs the tokens in order of probability; without a cut
    // (top_p 1) any order draws from the same distribution, and sorting a
    // 151k vocabulary for every token of every rollout is what we skip.
    if s.top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f32 = probs.iter().map(|p| p.1).sum();
        let mut kept = 0.0;
        for (i, p) in probs.iter().enumerate() {
            kept += p.1 / total;
            if kept >= s.top_p as f32 {
                cut = i + 1;
                break;
            }
        }
    }
    let probs = &probs[..cut];
    let mass: f32 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.random::<f32>() * mass;
    for p in probs {
        r -= p.1;
        if r <= 0.0 {
            return p.0;
        }
    }
    probs.last().map(|p| p.0).unwrap_or(0)
}

impl Engine {
    pub fn collate(&self, prompts: &[&PreparedPrompt]) -> ModelInputs {
        let pad = self.model.config.pad_token_id.unwrap_or(0);
        ModelInputs::collate(prompts, pad, self.model.device)
    }

    /// Generates for every prompt (batched, left-padded). `on_step` sees each
    /// token as it is chosen and may stop the whole batch.
    pub fn generate(
        &self,
        prompts: &[&PreparedPrompt],
        opts: &GenerateOptions,
        on_step: &mut dyn FnMut(&TokenStep) -> Flow,
    ) -> Result<Vec<Generation>> {
        let _guard = tch::no_grad_guard();
        let model = &self.model;
        let inputs = self.collate(prompts);
        let (hidden, cache, reports) = self.prefill_last(&inputs, &opts.intervention)?;
        let last = model.logits(&hidden).squeeze_dim(1); // [B, V]
        let adapt: Vec<Option<AdaptReport>> = (0..prompts.len()).map(|i| reports.as_ref().map(|r| r[i].clone())).collect();
        let streams: Vec<u64> = (0..prompts.len() as u64).collect();
        self.decode(last, cache, inputs.next_positions.clone(), adapt, &streams, opts, on_step)
    }

    /// The prompt's pass for next-token work: the last position's hidden
    /// states, the filled cache and, under an intervention, its reports.
    fn prefill_last(
        &self,
        inputs: &ModelInputs,
        intervention: &Intervention,
    ) -> Result<(Tensor, super::text::KvCache, Option<Vec<AdaptReport>>)> {
        let mut cache = self.model.new_cache();
        let plan = self.model.plan_intervention(inputs, intervention)?;
        let hidden = match &plan {
            Some((alphas, _)) => self.model.prefill_scaled(inputs, alphas, &mut cache, Rows::Last)?,
            None => self.model.prefill(inputs, &mut cache, Rows::Last)?,
        };
        Ok((hidden, cache, plan.map(|(_, reports)| reports)))
    }

    /// Refuses `n` sampled answers of up to `positions` each (the prompt and
    /// the new tokens) when their KV cache and logits exceed what the device has left.
    pub fn check_sampling_fits(&self, n: usize, positions: usize) -> Result<(), super::memory::DoesNotFit> {
        let model = &self.model;
        let bytes = super::memory::decoding_bytes(&model.config.text, n as u64, positions as u64, model.kind.elt_size_in_bytes() as u64);
        super::memory::check_fits(&format!("{n} sampled answers of up to {positions} positions"), bytes, model.device)
    }

    /// `n` sampled continuations of one prompt from one prefill: the prompt's
    /// cache is expanded to `n` rows, not computed `n` times. Row `j` draws
    /// from the random stream `streams[j]` of `opts.sampling`'s seed, so a
    /// sample is the same whichever others are drawn with it.
    pub fn generate_shared(
        &self,
        prompt: &PreparedPrompt,
        streams: &[u64],
        opts: &GenerateOptions,
        on_step: &mut dyn FnMut(&TokenStep) -> Flow,
    ) -> Result<Vec<Generation>> {
        let _guard = tch::no_grad_guard();
        let model = &self.model;
        let n = streams.len() as i64;
        if n == 0 {
            return Ok(Vec::new());
        }
        // Refused before the prefill allocates anything when the n rows cannot fit.
        self.check_sampling_fits(n as usize, prompt.len() + opts.max_new_tokens)?;
        let inputs = self.collate(&[prompt]);
        let (hidden, cache, reports) = self.prefill_last(&inputs, &opts.intervention)?;
        let last = model.logits(&hidden).squeeze_dim(1).repeat([n, 1]);
        let adapt = vec![reports.as_ref().map(|r| r[0].clone()); n as usize];
        let positions = vec![inputs.next_positions[0]; n as usize];
        self.decode(last, cache.expand(n), positions, adapt, streams, opts, on_step)
    }

    /// The decoding loop after a prefill: `last` [B, V] logits, the cache and
    /// each row's next position. Greedy, or sampled with one random stream per row.
    #[allow(clippy::too_many_arguments)]
    fn decode(
        &self,
        mut last: Tensor,
        mut cache: super::text::KvCache,
        mut positions: Vec<i64>,
        adapt: Vec<Option<AdaptReport>>,
        streams: &[u64],
        opts: &GenerateOptions,
        on_step: &mut dyn FnMut(&TokenStep) -> Flow,
    ) -> Result<Vec<Generation>> {
        let model = &self.model;
        let b = positions.len();
        let stops = opts.stop_ids.clone().unwrap_or_else(|| model.config.eos_token_ids.clone());
        let mut out: Vec<Generation> = adapt
            .into_iter()
            .map(|adapt| Generation {
                tokens: vec![],
                text: String::new(),
                logprobs: vec![],
                first_token_top: vec![],
                stop: StopReason::MaxTokens,
                adapt,
            })
            .collect();
        let mut done = vec![false; b];
        let seed = opts.sampling.as_ref().map(|s| s.seed).unwrap_or(0);
        let mut rngs: Vec<rand_chacha::ChaCha8Rng> = streams
            .iter()
            .map(|&k| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(k);
                rng
            })
            .collect();
        let suppress = (!opts.suppress.is_empty()).then(|| Tensor::from_slice(&opts.suppress).to_device(model.device));
        for step in 0..opts.max_new_tokens {
            if let Some(ids) = &suppress {
                last = last.index_fill(1, ids, f64::NEG_INFINITY);
            }
            let logprobs = last.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
            if step == 0 && opts.first_token_top_k > 0 {
                let (vals, idx) = logprobs.topk(opts.first_token_top_k as i64, -1, true, true);
                let (vals, idx) = (
                    Vec::<Vec<f32>>::try_from(vals.to_device(tch::Device::Cpu))?,
                    Vec::<Vec<i64>>::try_from(idx.to_device(tch::Device::Cpu))?,
                );
                for (g, (v, i)) in out.iter_mut().zip(vals.into_iter().zip(idx)) {
                    g.first_token_top = i
                        .into_iter()
                        .zip(v)
                        .map(|(id, lp)| TopToken {
                            id,
                            token: self.processor.tokenizer.decode(&[id], false).unwrap_or_default(),
                            logprob: lp,
                        })
                        .collect();
                }
            }
            let chosen: Vec<i64> = match &opts.sampling {
                None => Vec::<i64>::try_from(logprobs.argmax(-1, false).to_device(tch::Device::Cpu))?,
                Some(s) => {
                    let rows = Vec::<Vec<f32>>::try_from(logprobs.to_device(tch::Device::Cpu))?;
                    rows.iter().zip(rngs.iter_mut()).map(|(r, rng)| sample_token(r, s, rng) as i64).collect()
                }
            };
            let chosen_lp = Vec::<f32>::try_from(
                logprobs
                    .gather(1, &Tensor::from_slice(&chosen).to_device(model.device).unsqueeze(1), false)
                    .squeeze_dim(1)
                    .to_device(tch::Device::Cpu),
            )?;
            if let Some(i) = (0..b).find(|&i| !done[i] && !chosen_lp[i].is_finite()) {
                bail!("{}", non_finite(&format!("step {step} of answer {i} has log-prob {}", chosen_lp[i])));
            }
            let mut flow = Flow::Continue;
            for i in 0..b {
                if done[i] {
                    continue;
                }
                if stops.contains(&chosen[i]) {
                    done[i] = true;
                    out[i].stop = StopReason::StopToken;
                    continue;
                }
                let g = &mut out[i];
                g.tokens.push(chosen[i]);
                g.logprobs.push(chosen_lp[i]);
                let text = self.processor.tokenizer.decode(&g.tokens, true)?;
                // Hold back a trailing partial UTF-8 character (decoded as U+FFFD).
                let stable = text.trim_end_matches('\u{FFFD}');
                let delta = stable.get(g.text.len()..).unwrap_or("").to_string();
                if stable.len() >= g.text.len() {
                    g.text = stable.to_string();
                }
                if on_step(&TokenStep { sample: i, token: chosen[i], delta: &delta, logprob: chosen_lp[i] }) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
            if flow == Flow::Stop {
                for (g, d) in out.iter_mut().zip(&done) {
                    if !d {
                        g.stop = StopReason::Cancelled;
                    }
                }
                break;
            }
            if done.iter().all(|&d| d) || step + 1 == opts.max_new_tokens {
                break;
            }
            // Finished rows keep decoding a pad token; their output is ignored.
            let feed: Vec<i64> =
                chosen.iter().zip(&done).map(|(&c, &d)| if d { model.config.pad_token_id.unwrap_or(0) } else { c }).collect();
            let hidden = model.step(&feed, &positions, &mut cache);
            for p in positions.iter_mut() {
                *p += 1;
            }
            last = model.logits(&hidden).squeeze_dim(1);
        }
        for g in out.iter_mut() {
            g.text = self.processor.tokenizer.decode(&g.tokens, true)?;
        }
        Ok(out)
    }

    /// The token id each option label starts with (e.g. "A" -> id of "A").
    pub fn option_token_ids(&self, labels: &[String]) -> Result<Vec<i64>> {
        let tok = &self.processor.tokenizer;
        let ids: Vec<i64> = labels
            .iter()
            .map(|l| {
                tok.single_token(l)
                    .or_else(|| tok.encode(l).ok().and_then(|v| v.first().copied()))
                    .ok_or_else(|| anyhow::anyhow!("option label `{l}` does not tokenise"))
            })
            .collect::<Result<_>>()?;
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                if ids[i] == ids[j] {
                    bail!("options `{}` and `{}` start with the same token; they cannot be scored apart", labels[i], labels[j]);
                }
            }
        }
        Ok(ids)
    }

    /// One forward pass per batch: the log-prob of each option's first token
    /// as the answer's first token.
    pub fn score_options(&self, prompts: &[&PreparedPrompt], labels: &[Vec<String>]) -> Result<Vec<OptionScores>> {
        self.score_options_with(prompts, labels, &Intervention::None)
    }

    /// `score_options` under an attention intervention.
    pub fn score_options_with(
        &self,
        prompts: &[&PreparedPrompt],
        labels: &[Vec<String>],
        intervention: &Intervention,
    ) -> Result<Vec<OptionScores>> {
        if prompts.len() != labels.len() {
            bail!("{} prompts but {} option lists", prompts.len(), labels.len());
        }
        let inputs = self.collate(prompts);
        let plan = self.model.plan_intervention(&inputs, intervention)?;
        let last = match &plan {
            None => self.model.last_logits(&inputs)?,
            Some((alphas, _)) => {
                let _guard = tch::no_grad_guard();
                let hidden = self.model.prefill_scaled(&inputs, alphas, &mut self.model.new_cache(), Rows::Last)?;
                self.model.logits(&hidden).squeeze_dim(1)
            }
        };
        let logprobs = last.to_kind(Kind::Float).log_softmax(-1, Kind::Float).to_device(tch::Device::Cpu);
        labels
            .iter()
            .enumerate()
            .map(|(i, ls)| {
                let ids = self.option_token_ids(ls)?;
                let row = logprobs.get(i as i64);
                let lps: Vec<f32> = ids.iter().map(|&id| row.double_value(&[id]) as f32).collect();
                OptionScores::new(ls.clone(), ids, lps, plan.as_ref().map(|(_, r)| r[i].clone()))
            })
            .collect()
    }
}

impl Engine {
    /// Scores whole phrases, for models that answer in words: the log-prob
    /// of each phrase's every token after the prompt (not just its first,
    /// which "front-left" and "front-right" share). The prompt is prefilled
    /// once; each phrase continues from a fork of its cache. `labels` name
    /// the phrases in the result (the option letters).
    pub fn score_phrases(
        &self,
        prompt: &PreparedPrompt,
        labels: &[String],
        phrases: &[String],
        intervention: &Intervention,
    ) -> Result<OptionScores> {
        if labels.len() != phrases.len() || phrases.is_empty() {
            bail!("{} labels for {} phrases", labels.len(), phrases.len());
        }
        let _guard = tch::no_grad_guard();
        let inputs = self.collate(&[prompt]);
        let (hidden, cache, plan) = self.prefill_last(&inputs, intervention)?;
        let first = self.model.logits(&hidden).reshape([-1]).to_kind(Kind::Float).log_softmax(-1, Kind::Float);
        let start = inputs.next_positions[0];
        let mut token_ids = Vec::new();
        let mut logprobs = Vec::new();
        for phrase in phrases {
            let tokens = self.processor.tokenizer.encode(phrase)?;
            let Some(&head) = tokens.first() else { bail!("option `{phrase}` does not tokenise") };
            let mut lp = first.double_value(&[head]);
            let mut branch = cache.fork();
            for (k, pair) in tokens.windows(2).enumerate() {
                let h = self.model.step(&[pair[0]], &[start + k as i64], &mut branch);
                let row = self.model.logits(&h).reshape([-1]).to_kind(Kind::Float).log_softmax(-1, Kind::Float);
                lp += row.double_value(&[pair[1]]);
            }
            token_ids.push(head);
            logprobs.push(lp as f32);
        }
        OptionScores::new(labels.to_vec(), token_ids, logprobs, plan.and_then(|r| r.into_iter().next()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_the_head() {
        let lps = [0.0f32, -10.0, -10.0, -10.0];
        let s = Sampling { temperature: 1.0, top_p: 0.5, seed: 1 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            assert_eq!(sample_token(&lps, &s, &mut rng), 0);
        }
        let flat = [0.0f32; 4];
        let s = Sampling { temperature: 1.0, top_p: 1.0, seed: 1 };
        let seen: std::collections::HashSet<usize> = (0..200).map(|_| sample_token(&flat, &s, &mut rng)).collect();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn option_probabilities_sum_to_one() {
        let s =
            OptionScores { labels: vec!["A".into(), "B".into()], token_ids: vec![1, 2], logprobs: vec![-1.0, -2.0], best: 0, adapt: None };
        let p = s.probabilities();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6 && p[0] > p[1]);
        assert_eq!(s.best_label(), "A");
    }
}
