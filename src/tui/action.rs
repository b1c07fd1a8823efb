//! Everything a key can do. Keymap files name these in snake_case.

macro_rules! actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    Quit => "quit",
    Help => "help",
    Cancel => "cancel",
    CycleProtocol => "cycle_protocol",
    FocusSamples => "focus_samples",
    FocusSample => "focus_sample",
    FocusLive => "focus_live",
    FocusConfusion => "focus_confusion",
    FocusSaliency => "focus_saliency",
    FocusRuns => "focus_runs",
    FocusCausal => "focus_causal",
    NextPane => "next_pane",
    PrevPane => "prev_pane",
    Up => "up",
    Down => "down",
    Left => "left",
    Right => "right",
    PageUp => "page_up",
    PageDown => "page_down",
    Top => "top",
    Bottom => "bottom",
    Select => "select",
    NextFrame => "next_frame",
    PrevFrame => "prev_frame",
    Search => "search",
    FilterCategory => "filter_category",
    FilterStatus => "filter_status",
    FilterError => "filter_error",
    FilterGold => "filter_gold",
    RemoveChip => "remove_chip",
    ClearFilters => "clear_filters",
    Sort => "sort",
    ReverseSort => "reverse_sort",
    SaveView => "save_view",
    NextView => "next_view",
    AskPlain => "ask_plain",
    AskBoxed => "ask_boxed",
    AskFlipped => "ask_flipped",
    AskAdaptVis => "ask_adaptvis",
    AskTyped => "ask_typed",
    SaveAnswer => "save_answer",
    ErrorsOnly => "errors_only",
    NextCategory => "next_category",
    CycleMethod => "cycle_method",
    CycleTarget => "cycle_target",
    CycleColormap => "cycle_colormap",
    AlphaUp => "alpha_up",
    AlphaDown => "alpha_down",
    ToggleAttention => "toggle_attention",
    Recompute => "recompute",
    OpenRun => "open_run",
    MarkRun => "mark_run",
    CompareRuns => "compare_runs",
    CycleVariant => "cycle_variant",
    Rerun => "rerun",
    BatchSaliency => "batch_saliency",
    CancelJob => "cancel_job",
    Finetune => "finetune",
    EvalAdapter => "eval_adapter",
    CycleWindow => "cycle_window",
    CycleAnswer => "cycle_answer",
    ScrollDown => "scroll_down",
    ScrollUp => "scroll_up",
    BatchCausal => "batch_causal",
    Backspace => "backspace",
    Noop => "noop",
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(*a));
        }
        assert_eq!(Action::from_name("explode"), None);
    }
}
