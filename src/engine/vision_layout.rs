//! The vision tower's index bookkeeping, in plain integers: rotary (h, w)
//! positions, the window reordering of merged tokens, and the boundaries of
//! the attention segments (windows, or whole images).

/// One image's patch grid: temporal, height and width in 14-px patches.
pub type Grid = [i64; 3];

/// (h, w) rotary position of every patch, in the processor's block-major
/// order (each merge x merge block's patches are consecutive).
pub fn rotary_positions(grids: &[Grid], merge: i64) -> Vec<[i64; 2]> {
    let mut out = Vec::new();
    for &[t, h, w] in grids {
        for _ in 0..t {
            for bh in 0..h / merge {
                for bw in 0..w / merge {
                    for mh in 0..merge {
                        for mw in 0..merge {
                            out.push([bh * merge + mh, bw * merge + mw]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The windowed order of merged tokens and where each window starts/ends
/// (in patches), as transformers' `get_vision_window_index` computes it:
/// windows of `window` merged tokens per side, read row by row, the grid's
/// ragged right/bottom edge giving smaller windows.
pub struct WindowLayout {
    /// New position -> original merged-token index.
    pub window_index: Vec<i64>,
    /// Cumulative patch counts at window boundaries, starting at 0.
    pub cu_window_seqlens: Vec<i64>,
}

pub fn window_layout(grids: &[Grid], merge: i64, window_merged: i64) -> WindowLayout {
    let unit = merge * merge;
    let mut window_index = Vec::new();
    let mut cu = vec![0i64];
    let mut base = 0i64;
    for &[t, h, w] in grids {
        let (gh, gw) = (h / merge, w / merge);
        let nwh = (gh + window_merged - 1) / window_merged;
        let nww = (gw + window_merged - 1) / window_merged;
        for ti in 0..t {
            for wy in 0..nwh {
                for wx in 0..nww {
                    let mut count = 0;
                    for y in wy * window_merged..((wy + 1) * window_merged).min(gh) {
                        for x in wx * window_merged..((wx + 1) * window_merged).min(gw) {
                            window_index.push(base + ti * gh * gw + y * gw + x);
                            count += 1;
                        }
                    }
                    if count > 0 {
                        cu.push(cu.last().unwrap() + count * unit);
                    }
                }
            }
        }
        base += t * gh * gw;
    }
    WindowLayout { window_index, cu_window_seqlens: cu }
}

/// Cumulative patch counts at frame boundaries: full attention sees one
/// image frame at a time.
pub fn frame_seqlens(grids: &[Grid]) -> Vec<i64> {
    let mut cu = vec![0i64];
    for &[t, h, w] in grids {
        for _ in 0..t {
            cu.push(cu.last().unwrap() + h * w);
        }
    }
    cu
}

/// The inverse permutation of `index`.
pub fn inverse(index: &[i64]) -> Vec<i64> {
    let mut inv = vec![0i64; index.len()];
    for (new, &old) in index.iter().enumerate() {
        inv[old as usize] = new as i64;
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_block_major() {
        let p = rotary_positions(&[[1, 4, 4]], 2);
        assert_eq!(&p[..8], &[[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]]);
        assert_eq!(p.len(), 16);
    }

    #[test]
    fn ragged_windows() {
        // 6x9 merged grid, 4x4 windows -> 2x3 windows of 16, 16, 4 / 8, 8, 2 tokens.
        let l = window_layout(&[[1, 12, 18]], 2, 4);
        let sizes: Vec<i64> = l.cu_window_seqlens.windows(2).map(|w| (w[1] - w[0]) / 4).collect();
        assert_eq!(sizes, vec![16, 16, 4, 8, 8, 2]);
        assert_eq!(l.window_index.len(), 54);
        assert_eq!(&l.window_index[..5], &[0, 1, 2, 3, 9]);
        let inv = inverse(&l.window_index);
        for (new, &old) in l.window_index.iter().enumerate() {
            assert_eq!(inv[old as usize], new as i64);
        }
    }

    #[test]
    fn two_images_offset() {
        let l = window_layout(&[[1, 4, 4], [1, 2, 2]], 2, 4);
        assert_eq!(l.window_index, vec![0, 1, 2, 3, 4]);
        assert_eq!(l.cu_window_seqlens, vec![0, 16, 20]);
        assert_eq!(frame_seqlens(&[[1, 4, 4], [1, 2, 2]]), vec![0, 16, 20]);
    }
}
