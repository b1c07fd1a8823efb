//! Colormaps as piecewise-linear control points: inferno and viridis
//! (matplotlib's, sampled at 9 points) for magnitudes, and a blue-white-red
//! diverging map for signed values.

use image::Rgb;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Colormap {
    Inferno,
    Viridis,
    #[value(alias = "coolwarm", alias = "rdbu")]
    Diverging,
}

const INFERNO: [[u8; 3]; 9] =
    [[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85], [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]];
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 45, 123],
    [59, 82, 139],
    [44, 114, 142],
    [33, 145, 140],
    [40, 174, 128],
    [94, 201, 98],
    [173, 220, 48],
    [253, 231, 37],
];
const DIVERGING: [[u8; 3]; 5] = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];

impl Colormap {
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Inferno => "inferno",
            Colormap::Viridis => "viridis",
            Colormap::Diverging => "diverging",
        }
    }

    pub fn next(self) -> Colormap {
        match self {
            Colormap::Inferno => Colormap::Viridis,
            Colormap::Viridis => Colormap::Diverging,
            Colormap::Diverging => Colormap::Inferno,
        }
    }

    /// Colour at t in [0, 1] (for Diverging, 0.5 is zero).
    pub fn at(self, t: f32) -> Rgb<u8> {
        let stops: &[[u8; 3]] = match self {
            Colormap::Inferno => &INFERNO,
            Colormap::Viridis => &VIRIDIS,
            Colormap::Diverging => &DIVERGING,
        };
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
        let pos = t * (stops.len() - 1) as f32;
        let i = (pos.floor() as usize).min(stops.len() - 2);
        let f = pos - i as f32;
        let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
        Rgb([mix(stops[i][0], stops[i + 1][0]), mix(stops[i][1], stops[i + 1][1]), mix(stops[i][2], stops[i + 1][2])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_midpoint() {
        assert_eq!(Colormap::Inferno.at(0.0), Rgb([0, 0, 4]));
        assert_eq!(Colormap::Inferno.at(1.0), Rgb([252, 255, 164]));
        assert_eq!(Colormap::Viridis.at(1.0), Rgb([253, 231, 37]));
        assert_eq!(Colormap::Diverging.at(0.5), Rgb([247, 247, 247]));
        assert_eq!(Colormap::Inferno.at(f32::NAN), Rgb([0, 0, 4]));
        // brightness increases monotonically along inferno
        let lum = |c: Rgb<u8>| c.0.iter().map(|&x| x as u32).sum::<u32>();
        assert!((0..10).all(|i| lum(Colormap::Inferno.at(i as f32 / 10.0)) <= lum(Colormap::Inferno.at((i + 1) as f32 / 10.0))));
        assert!(<Colormap as clap::ValueEnum>::from_str("jet", true).is_err());
        assert_eq!(<Colormap as clap::ValueEnum>::from_str("coolwarm", true), Ok(Colormap::Diverging));
    }
}
