//! Background jobs: the engine lives on a worker thread; the TUI sends job
//! requests and receives events, and never touches torch itself. Work on the
//! focused sample is latest-wins: a new focused job cancels the previous
//! one, and queued jobs that were cancelled are dropped unrun. Focused jobs
//! also jump the queue: a long background job (an eval rerun, a saliency
//! batch) serves them between its batches, so the focused sample never
//! waits for a whole run.
pub mod manager;
pub mod request;
mod worker;

pub use manager::{JobId, JobManager};
pub use request::{EvalRun, JobEvent, JobRequest, SaliencyGoal};
pub use worker::EventSink;
