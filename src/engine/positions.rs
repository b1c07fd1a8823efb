//! Multimodal rotary positions (transformers' `get_rope_index`): text tokens
//! count up on all three axes; an image's tokens sit at one temporal
//! position with h/w on its merged grid; text resumes after the image's
//! largest position.

use super::vision_layout::Grid;
use anyhow::{bail, Result};

/// Positions [3][len] for one unpadded sequence, and the rope delta
/// (max position + 1 - len) that decoding adds to plain token counts.
pub fn rope_index(ids: &[i64], image_token: i64, grids: &[Grid], merge: i64) -> Result<([Vec<i64>; 3], i64)> {
    let mut pos: [Vec<i64>; 3] = [Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len())];
    let mut current = 0i64;
    let mut images = grids.iter();
    let mut i = 0usize;
    while i < ids.len() {
        if ids[i] != image_token {
            for p in pos.iter_mut() {
                p.push(current);
            }
            current += 1;
            i += 1;
            continue;
        }
        let Some(&[t, h, w]) = images.next() else {
            bail!("the prompt has more image tokens than the {} image(s) given", grids.len());
        };
        let (gh, gw) = (h / merge, w / merge);
        let count = (t * gh * gw) as usize;
        if i + count > ids.len() || ids[i..i + count].iter().any(|&x| x != image_token) {
            bail!("an image of {gh}x{gw} merged tokens needs {count} consecutive image tokens at position {i}");
        }
        for ti in 0..t {
            for y in 0..gh {
                for x in 0..gw {
                    pos[0].push(current + ti);
                    pos[1].push(current + y);
                    pos[2].push(current + x);
                }
            }
        }
        current += gh.max(gw);
        i += count;
    }
    if images.next().is_some() {
        bail!("{} image(s) given but the prompt has image tokens for fewer", grids.len());
    }
    let max = pos.iter().flat_map(|p| p.iter().copied()).max().unwrap_or(-1);
    Ok((pos, max + 1 - ids.len() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_image_text() {
        // 2 text, a 2x3 merged image (6 tokens), 2 text
        let ids = [1, 2, 9, 9, 9, 9, 9, 9, 3, 4];
        let (p, delta) = rope_index(&ids, 9, &[[1, 4, 6]], 2).unwrap();
        assert_eq!(p[0], vec![0, 1, 2, 2, 2, 2, 2, 2, 5, 6]);
        assert_eq!(p[1], vec![0, 1, 2, 2, 2, 3, 3, 3, 5, 6]);
        assert_eq!(p[2], vec![0, 1, 2, 3, 4, 2, 3, 4, 5, 6]);
        assert_eq!(delta, 7 - 10);
    }

    #[test]
    fn token_count_must_match() {
        assert!(rope_index(&[9, 9, 9], 9, &[[1, 4, 4]], 2).unwrap_err().to_string().contains("needs 4 consecutive"));
        assert!(rope_index(&[1, 2], 9, &[[1, 4, 4]], 2).unwrap_err().to_string().contains("fewer"));
    }
}
