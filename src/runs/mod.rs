//! The run store: `runs/<name>/run.json` (what was run, how) and an
//! append-only `records.jsonl`, one flushed line per sample and rotation.
pub mod meta;
pub mod plot;
pub mod record;
pub mod report;
pub mod store;

pub use meta::RunMeta;
pub use record::Record;
pub use store::RunStore;
