//! flipscope: a terminal workbench for finding out why vision-language
//! models fail at spatial reasoning. Data flows one way:
//! dataset -> Sample -> engine -> Record -> reports/TUI.
pub mod bench;
pub mod causal;
pub mod cli;
pub mod config;
pub mod counterfactual;
pub mod data;
pub mod engine;
pub mod eval;
pub mod fsutil;
pub mod jobs;
pub mod kv;
pub mod runs;
pub mod spatial;
pub mod train;
pub mod tui;
pub mod viz;
