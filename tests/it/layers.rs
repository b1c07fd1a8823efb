//! The module graph is one-way: a module under src/ imports only modules of
//! a lower layer (or itself). Every `crate::NAME` path in the source is read,
//! including the names inside `use crate::{a, b::c}` groups.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers, lowest first. Modules on one line share a layer only when they
/// never import each other.
const LAYERS: &[&[&str]] = &[
    &["fsutil", "kv", "spatial"],
    &["data"],
    &["viz", "config"],
    &["engine"],
    &["runs"],
    &["eval"],
    &["counterfactual"],
    &["causal"],
    &["train"],
    &["bench", "jobs"],
    &["tui"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a source text names through `crate::`.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in text.match_indices("crate::") {
        // `flipscope::crate::` never occurs; skip identifiers that merely end in "crate".
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first identifier of every item at depth 1 of the group.
            let (mut depth, mut item_start) = (1, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        out.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn no_module_imports_one_of_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut backward = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        let own = layer_of(&first).unwrap_or_else(|| panic!("src/{first} is in no layer: add it to LAYERS"));
        for m in crate_imports(&std::fs::read_to_string(f).unwrap()) {
            let theirs = layer_of(&m).unwrap_or_else(|| panic!("{}: imports crate::{m}, which is in no layer", rel.display()));
            if theirs > own || (theirs == own && m != first) {
                backward.push(format!("src/{} ({first}) imports crate::{m}", rel.display()));
            }
        }
    }
    assert!(backward.is_empty(), "backward imports:\n  {}", backward.join("\n  "));
}

#[test]
fn the_import_reader_sees_groups_and_paths() {
    let text = "use crate::{data::Sample, engine::{Engine, Flow}, spatial};\nfn f() { crate::runs::x(); }\nlet my_crate::x = 1;";
    let got: Vec<String> = crate_imports(text).into_iter().collect();
    assert_eq!(got, ["data", "engine", "runs", "spatial"]);
}
