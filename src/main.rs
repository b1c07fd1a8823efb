use clap::Parser;
use flipscope::cli::{self, Cli, Command};

fn main() {
    // Rust ignores SIGPIPE; restore the default so `flipscope report | head` just stops.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before anything can ask libtorch about CUDA: it caches the first answer.
    flipscope::engine::device::load_cuda_runtime_if_gpu();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Tui(cli.tui)) {
        Command::Tui(args) => flipscope::tui::run(&args),
        Command::Doctor(args) => cli::doctor::run(&args).map(|ok| {
            if !ok {
                std::process::exit(1)
            }
        }),
        Command::Data(cmd) => cli::data_cmd::run(&cmd),
        Command::Infer(args) => cli::infer::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Extract(args) => cli::extract_cmd::run(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Distill(args) => cli::distill::run(&args),
        Command::Report(args) => cli::report::run(&args),
        Command::Runs(cmd) => cli::runs_cmd::run(&cmd),
        Command::Model(cmd) => cli::model_cmd::run(&cmd),
        Command::Saliency(args) => cli::saliency::run_saliency(&args),
        Command::Attention(args) => cli::saliency::run_attention(&args),
        Command::Probe(cmd) => cli::probe_cmd::run(&cmd),
        Command::Lens(args) => cli::causal_cmd::run_lens(&args),
        Command::Knockout(args) => cli::causal_cmd::run_knockout(&args),
        Command::Patch(args) => cli::causal_cmd::run_patch(&args),
        Command::Ablate(args) => cli::causal_cmd::run_ablate(&args),
        Command::ProbeLinear(args) => cli::direction_cmd::run_probe_linear(&args),
        Command::Steer(args) => cli::direction_cmd::run_steer(&args),
        Command::Bench(cmd) => cli::bench::run(&cmd),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
