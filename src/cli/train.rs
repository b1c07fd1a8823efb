//! `flipscope train`: LoRA or full-weight finetuning on a data mix.

use crate::engine::Flow;
use crate::train::{train, TrainConfig, TrainEvent};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the run at the next step boundary, with a checkpoint.
pub fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn run(cfg: &TrainConfig) -> Result<()> {
    stop_on_signals();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = train(cfg, &mut |event| {
        match event {
            TrainEvent::Log(line) => say(&bar, line.clone()),
            TrainEvent::Step(m) => {
                bar.set_length(m.total_steps as u64);
                bar.set_position(m.step as u64);
                bar.set_message(m.line());
                if !bar.is_hidden() && m.step % 10 != 0 && m.step != m.total_steps {
                    return flow();
                }
                if bar.is_hidden() {
                    println!("{}", m.line());
                }
            }
            TrainEvent::Saved { step, dir } => say(&bar, format!("checkpoint at step {step} in {}", dir.display())),
            TrainEvent::Eval { step, accuracy, run } => {
                say(&bar, format!("eval at step {step}: accuracy {:.1}% ({})", 100.0 * accuracy, run.display()))
            }
        }
        flow()
    })?;
    bar.finish_and_clear();
    let verb = if outcome.stopped { "stopped" } else { "finished" };
    println!(
        "{verb} at step {}/{}; final loss {}; {} samples skipped; output in {}",
        outcome.steps,
        outcome.total_steps,
        outcome.final_loss.map(|l| format!("{l:.4}")).unwrap_or("-".into()),
        outcome.skipped,
        cfg.out.display()
    );
    if let Some(m) = outcome.merged {
        println!("merged checkpoint: {}", m.display());
    }
    Ok(())
}

/// A line above the bar, or on stdout when the bar is hidden (not a terminal).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn flow() -> Flow {
    if interrupted() {
        Flow::Stop
    } else {
        Flow::Continue
    }
}
