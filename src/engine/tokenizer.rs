//! The checkpoint's `tokenizer.json`, through the `tokenizers` crate.

use anyhow::{anyhow, Result};
use std::path::Path;

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    pub fn load(dir: &Path) -> Result<TextTokenizer> {
        let file = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&file).map_err(|e| anyhow!("{}: cannot load tokenizer: {e}", file.display()))?;
        Ok(TextTokenizer { inner })
    }

    /// Ids for `text`, with the tokenizer's own post-processing (as `tokenizer(text)` does in Python).
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self.inner.encode(text, true).map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    pub fn decode(&self, ids: &[i64], skip_special: bool) -> Result<String> {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.inner.decode(&ids, skip_special).map_err(|e| anyhow!("decoding: {e}"))
    }

    pub fn token_to_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(|i| i as i64)
    }

    pub fn id_to_token(&self, id: i64) -> Option<String> {
        self.inner.id_to_token(id as u32)
    }

    /// The single token `text` encodes to, if it is exactly one.
    pub fn single_token(&self, text: &str) -> Option<i64> {
        let enc = self.inner.encode(text, false).ok()?;
        match enc.get_ids() {
            [one] => Some(*one as i64),
            _ => None,
        }
    }
}

/// Trains a byte-level BPE of `vocab` tokens on `texts`, keeping `base`'s
/// pre-tokenizer, decoder and special tokens (at the same ids, first), and
/// writes it to `out`. For small models trained from scratch, whose
/// prompts a tiny vocabulary would spread over far too many tokens.
pub fn train_bpe(base: &Path, texts: &[String], vocab: usize, out: &Path) -> Result<usize> {
    use tokenizers::models::bpe::BpeTrainerBuilder;
    use tokenizers::models::TrainerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    let mut tok = tokenizers::Tokenizer::from_file(base).map_err(|e| anyhow!("{}: cannot load tokenizer: {e}", base.display()))?;
    let specials: Vec<tokenizers::AddedToken> =
        tok.get_added_tokens_decoder().into_iter().collect::<std::collections::BTreeMap<_, _>>().into_values().collect();
    let before: Vec<(String, u32)> =
        specials.iter().filter_map(|t| tok.token_to_id(&t.content).map(|id| (t.content.clone(), id))).collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, texts.iter()).map_err(|e| anyhow!("training the tokenizer: {e}"))?;
    for (content, id) in &before {
        if tok.token_to_id(content) != Some(*id) {
            anyhow::bail!("special token {content} moved from id {id} to {:?}", tok.token_to_id(content));
        }
    }
    let file = out.join("tokenizer.json");
    std::fs::create_dir_all(out)?;
    tok.save(&file, true).map_err(|e| anyhow!("writing {}: {e}", file.display()))?;
    Ok(tok.get_vocab_size(true))
}
