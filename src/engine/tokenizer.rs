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
