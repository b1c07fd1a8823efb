//! `flipscope model`: checkpoint utilities.

use crate::engine::{device, random_checkpoint};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Write a random-weight checkpoint with a real config (for memory and speed at true size).
    Random {
        /// 3b, 7b, or a path to a config.json.
        #[arg(long, default_value = "3b")]
        preset: String,
        #[arg(long)]
        out: PathBuf,
        /// f32 | bf16 | f16
        #[arg(long, default_value = "bf16")]
        dtype: String,
        /// Shard size in MiB.
        #[arg(long, default_value_t = 2048)]
        shard_mib: u64,
        #[arg(long, default_value_t = 0)]
        seed: i64,
    },
}

pub fn run(cmd: &ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Random { preset, out, dtype, shard_mib, seed } => {
            let config = random_checkpoint::preset_config(preset)?;
            let kind = device::parse_dtype(dtype, tch::Device::Cpu)?;
            let bytes = random_checkpoint::write(&config, out, kind, shard_mib << 20, *seed)?;
            println!("wrote {} ({:.2} GiB of {dtype} weights)", out.display(), crate::engine::memory::gib(bytes));
            Ok(())
        }
    }
}
