//! Direction algebra, text parsing, error taxonomy and confusion matrices.
//! Pure: never imports `engine/`.
pub mod confusion;
pub mod direction;
pub mod extract;
pub mod grounding;
pub mod letter;
pub mod normalize;
pub mod parse;
pub mod reference;
pub mod taxonomy;
pub mod verdict;

pub use direction::{Direction, Heading, Vertical};
pub use parse::{parse_free, parse_option, parse_relation};
pub use taxonomy::{classify, ErrorKind};
pub use verdict::Verdict;
