//! Pictures of numbers: attribution maps over images, colormaps and PNG
//! rendering. Pure: no torch; the engine produces `SaliencyMap`s.
pub mod chart;
pub mod colormap;
pub mod heatmap;
pub mod saliency_map;

pub use colormap::Colormap;
pub use heatmap::{render, HeatmapStyle};
pub use saliency_map::SaliencyMap;
