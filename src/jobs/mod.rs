//! Background jobs: the engine lives on a worker thread; the TUI sends job
//! requests and receives events, and never touches torch itself. Work on the
//! focused sample is latest-wins: a new focused job cancels the previous
//! one, and queued jobs that were cancelled are dropped unrun.
pub mod manager;

pub use manager::{JobEvent, JobId, JobManager, JobRequest};
