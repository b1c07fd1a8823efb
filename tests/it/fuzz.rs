//! Property tests (proptest) over everything that reads user input: answer
//! extraction, direction words, every loader's record parser, dataset
//! specs, the `k=v` parser, config parsing and chat templates. Properties:
//! nothing panics or hangs; extraction ignores surrounding whitespace (and
//! case, where its rules are case-blind); mirroring twice is the identity.
//!
//! `make test` runs 64 cases per property; `make fuzz` sets PROPTEST_CASES
//! higher (see the README).

use flipscope::data::{self, flip::swap_left_right};
use flipscope::spatial::extract::{self, extract_letter};
use flipscope::spatial::{Direction, Heading, Vertical};
use proptest::prelude::*;
use serde_json::Value;

/// Cases per property: PROPTEST_CASES when set, else `default`. No
/// regression files are written into the tree.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text made of the pieces answers are made of, and of anything at all.
fn answer_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "A",
            "B",
            "C",
            "D",
            "E",
            "a",
            "(A)",
            "(B)",
            "**C**",
            "D.",
            "B)",
            "answer",
            "Answer:",
            "the answer is",
            "is",
            "not",
            "isn't",
            "no",
            "or",
            "and",
            "I pick",
            "I'd go with",
            "option",
            "Option",
            "incorrect",
            "wrong",
            "because",
            "but",
            "Wait, no,",
            "actually",
            "I mean",
            "Ａ",
            "(b)",
            "\\boxed{C}",
            "left",
            "right",
            "front-left",
            "back",
            "front",
            "behind",
            "above",
            "below",
            "yes",
            "No",
            "three",
            "7",
            "<answer>",
            "</answer>",
            ".",
            ",",
            ":",
            ";",
            "!",
            "?",
            "\n",
            " ",
            "\t",
            "**",
            "(",
            ")",
            "-",
        ])
        .prop_map(str::to_string),
        "\\PC{0,6}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.join(" "))
}

fn ascii_text() -> impl Strategy<Value = String> {
    answer_text().prop_map(|s| s.chars().filter(char::is_ascii).collect())
}

fn options() -> Vec<(char, String)> {
    vec![('A', "left".into()), ('B', "right".into()), ('C', "front-left".into()), ('D', "back".into())]
}

fn whitespace() -> impl Strategy<Value = String> {
    "[ \t\n]{0,4}"
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn extraction_never_panics_and_ignores_surrounding_whitespace(s in answer_text(), pre in whitespace(), post in whitespace()) {
        let padded = format!("{pre}{s}{post}");
        let (a, b) = (extract_letter(&s, &options()), extract_letter(&padded, &options()));
        prop_assert_eq!((&a.answer, a.rule), (&b.answer, b.rule), "{:?} vs {:?}", s, padded);
        if let Some(span) = b.span {
            prop_assert!(padded.get(span).is_some(), "the span is a valid range of the output");
        }
        let v = ['A', 'B', 'C', 'D'];
        prop_assert_eq!(extract::extract_viewspatial(&s, &v).answer, extract::extract_viewspatial(&padded, &v).answer);
        for f in [extract::extract_yes_no, extract::extract_number, extract::extract_direction] {
            prop_assert_eq!(f(&s).answer, f(&padded).answer);
        }
        prop_assert_eq!(extract::extract_relation(&s, extract::VSR_RELATIONS).answer, extract::extract_relation(&padded, extract::VSR_RELATIONS).answer);
    }

    #[test]
    fn case_blind_rules_ignore_case(s in ascii_text()) {
        let up = s.to_uppercase();
        prop_assert_eq!(extract::extract_yes_no(&s).answer, extract::extract_yes_no(&up).answer);
        prop_assert_eq!(extract::extract_number(&s).answer, extract::extract_number(&up).answer);
        prop_assert_eq!(extract::extract_direction(&s).answer, extract::extract_direction(&up).answer);
        prop_assert_eq!(extract::extract_relation(&s, extract::VSR_RELATIONS).answer, extract::extract_relation(&up, extract::VSR_RELATIONS).answer);
    }

    #[test]
    fn direction_words_parse_without_panic_and_mirror_twice_to_themselves(s in answer_text()) {
        for d in [flipscope::spatial::parse_option(&s), flipscope::spatial::parse_free(&s), flipscope::spatial::parse_relation(&s)].into_iter().flatten() {
            prop_assert_eq!(d.mirrored().mirrored(), d);
        }
        prop_assert_eq!(swap_left_right(&swap_left_right(&s)), s.clone());
    }

    #[test]
    fn kv_pairs_never_panic_and_well_formed_ones_round_trip(s in "\\PC{0,40}", pairs in prop::collection::vec(("[a-z_]{1,8}", "[a-zA-Z0-9.+-]{0,8}"), 0..6)) {
        let _ = flipscope::kv::pairs(&s, &["targets"]);
        let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let back = flipscope::kv::pairs(&text, &[]).unwrap();
        let got: Vec<(String, String)> = back.into_iter().map(|p| (p.key, p.value)).collect();
        prop_assert_eq!(got, pairs);
    }

    /// One grammar for methods and interventions: anything parses or is
    /// refused without a panic, well-formed numbers round-trip, and NaN,
    /// infinities, zero and negatives are refused where a count or a weight
    /// is read.
    #[test]
    fn method_and_intervention_specs_check_every_number(
        s in "\\PC{0,30}", n in 1usize..100_000, sigma in 1e-6f64..1e3, t in 0.0f64..=1.0, w in 1e-6f64..1e3,
        bad in prop::sample::select(vec!["NaN", "inf", "-inf", "0", "-5", "1e999", "x"]),
    ) {
        use flipscope::engine::intervene::Intervention;
        use flipscope::engine::saliency::SaliencyMethod;
        let _ = (SaliencyMethod::parse(&s), Intervention::parse(&s), flipscope::eval::Variant::parse(&s));
        prop_assert_eq!(SaliencyMethod::parse(&format!("smoothgrad:{n},{sigma}")).unwrap(), SaliencyMethod::SmoothGrad { n, sigma, seed: 0 });
        let adaptive = Intervention::Adaptive { threshold: t, w1: w, w2: sigma };
        prop_assert_eq!(Intervention::parse(&adaptive.to_string()).unwrap(), adaptive);
        for spec in [format!("smoothgrad:{n},{bad}"), format!("ig:{bad}"), format!("scaling:{bad}"), format!("adaptvis:{t},{bad},1")] {
            prop_assert!(SaliencyMethod::parse(&spec).is_err() && Intervention::parse(&spec).is_err(), "{} was accepted", spec);
        }
    }

    #[test]
    fn dataset_specs_never_panic(s in "\\PC{0,40}", opts in "[a-z=,.0-9+]{0,30}", n in 0usize..40) {
        let _ = data::DatasetSpec::parse(&s);
        let _ = data::DatasetSpec::parse(&format!("generic:{s}#{opts}"));
        let _ = data::load(&format!("synth:{n}#{opts}"));
    }
}

/// Units whose repetition once made extraction rescan what it had read.
fn option_tokens() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec![
        "A",
        "B",
        "(A",
        "(B)",
        "(c)",
        "**C**",
        "D.",
        "A.",
        "answer is",
        "Answer:",
        "I'd say",
        "\\boxed{",
        "wait,",
        "no,",
        "actually",
        "not",
        "or",
        "and",
        "are wrong",
        "but",
        "left",
        "front-left",
        "Ａ",
        "\n",
        " ",
        ",",
        "...",
    ]);
    prop::collection::vec(unit, 1..6).prop_map(|u| u.concat())
}

/// The slowest read so far (seconds, unit), printed when it grows.
static SLOWEST: std::sync::Mutex<(f64, String)> = std::sync::Mutex::new((0.0, String::new()));

proptest! {
    #![proptest_config(config(64))]

    /// Reading is linear: 64 KB of any repeated option tokens reads in a
    /// small fraction of the bound, where one rescan per mention took
    /// minutes. The bound is loose so that no machine's speed fails it.
    #[test]
    fn extraction_of_64_kb_of_repeated_option_tokens_is_linear(unit in option_tokens()) {
        let text = unit.repeat((64 << 10) / unit.len() + 1);
        let start = std::time::Instant::now();
        let read = extract_letter(&text, &options());
        let took = start.elapsed().as_secs_f64();
        let mut slowest = SLOWEST.lock().unwrap_or_else(|e| e.into_inner());
        if took > slowest.0 {
            *slowest = (took, unit.clone());
            eprintln!("slowest extraction so far: {took:.3} s on 64 KB of {unit:?} (read as {})", read.rule.name());
        }
        prop_assert!(took < 5.0, "{took:.1} s to read 64 KB of {unit:?}");
    }
}

/// JSON values shaped like dataset records: known field names, any values, nesting.
fn record_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "id",
        "question",
        "image",
        "images",
        "image_path",
        "options",
        "choices",
        "answer",
        "question_type",
        "caption_options",
        "caption",
        "label",
        "relation",
        "task",
        "filename",
        "problem",
        "solution",
        "answer_style",
        "boxes",
        "split",
        "perspective",
        "metadata",
        "A",
        "B",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        answer_text().prop_map(Value::from),
        prop::sample::select(vec!["a.png", "A", "left", "yes", "1", "camera", "test", "Relative Direction"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn every_loader_survives_any_records(records in prop::collection::vec(record_value(), 0..6), junk in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"not really a png").unwrap();
        let list = dir.path().join("d.json");
        std::fs::write(&list, Value::Array(records.clone()).to_string()).unwrap();
        let lines = dir.path().join("d.jsonl");
        let mut body: Vec<u8> = records.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes();
        body.extend_from_slice(&junk);
        std::fs::write(&lines, &body).unwrap();
        let tsv = dir.path().join("d.tsv");
        std::fs::write(&tsv, [b"index\tquestion\tA\tB\tanswer\timage\n".as_slice(), &junk].concat()).unwrap();
        for spec in [
            format!("viewspatial:{}", list.display()),
            format!("whatsup:{}", list.display()),
            format!("generic:{}", lines.display()),
            format!("vsr:{}", lines.display()),
            format!("cvbench:{}", lines.display()),
            format!("clevr:{}", lines.display()),
            format!("adaptvis:{}", lines.display()),
            format!("vlmeval:{}", tsv.display()),
            lines.display().to_string(),
        ] {
            // Ok or a clear error; every sample then holds together.
            if let Ok(ds) = data::load(&spec) {
                for s in &ds.samples {
                    prop_assert!(s.options.len() <= 26);
                    if let Some(g) = s.gold_letter {
                        prop_assert!(s.option(g).is_some(), "{spec}: gold {g} is an option");
                    }
                }
            }
        }
    }

    #[test]
    fn config_parsing_survives_any_field_value(field in prop::sample::select(vec![
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "rms_norm_eps", "rope_theta", "max_position_embeddings", "image_token_id", "eos_token_id", "tie_word_embeddings",
    ]), vfield in prop::sample::select(vec![
        "depth", "hidden_size", "num_heads", "patch_size", "spatial_merge_size", "temporal_patch_size", "window_size",
        "out_hidden_size", "fullatt_block_indexes", "in_channels",
    ]), value in record_value(), number in any::<i64>()) {
        let base = serde_json::json!({"model_type": "qwen2_5_vl", "vocab_size": 448, "hidden_size": 64, "intermediate_size": 112,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 1000000.0,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "image_token_id": 12, "vision_start_token_id": 9,
            "eos_token_id": 2, "vision_config": {"depth": 4, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2,
            "out_hidden_size": 64, "window_size": 112, "fullatt_block_indexes": [1, 3]}});
        let file = std::path::Path::new("config.json");
        for v in [value.clone(), Value::from(number)] {
            let mut c = base.clone();
            c[field] = v.clone();
            let _ = flipscope::engine::config::ModelConfig::from_json(file, &c, None);
            let mut c = base.clone();
            c["vision_config"][vfield] = v.clone();
            if let Ok(cfg) = flipscope::engine::config::ModelConfig::from_json(file, &c, None) {
                prop_assert!(cfg.vision.patch_size > 0 && cfg.vision.spatial_merge_size > 0 && cfg.text.hidden_size > 0);
            }
            let _ = flipscope::engine::config::PreprocessorConfig::from_json(std::path::Path::new("p.json"), &serde_json::json!({ vfield: v }));
        }
    }
}

/// Templates made of Jinja pieces: loops, sets, concatenation, recursion.
fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{% for i in range(",
            "10000",
            "50",
            ") %}",
            "{% endfor %}",
            "{{ ",
            " }}",
            "messages",
            "i",
            " ~ ",
            "'ab'",
            "{% set ns = namespace(s='x') %}",
            "{% set ns.s = ns.s ~ ns.s %}",
            "ns.s",
            "{% if ",
            " %}",
            "{% endif %}",
            "{% macro f(n) %}{{ f(n) }}{% endmacro %}",
            "{{ f(1) }}",
            "x",
            " * ",
            "1000",
            "|length",
            "{%",
            "%}",
            "{{",
            "}}",
        ]),
        0..14,
    )
    .prop_map(|t| t.concat())
}

proptest! {
    // Each template is probed in a forked child: fewer cases than the rest.
    #![proptest_config(config(24))]

    #[test]
    fn chat_templates_end_under_their_limits(src in template_text()) {
        use flipscope::engine::chat::{ChatTemplate, Message, TemplateSource};
        if let Ok(t) = ChatTemplate::new(src, TemplateSource::Jinja) {
            let _ = t.render(&[Message::user_with_images(1, "Where is the cup?")], true);
        }
    }
}

#[test]
fn every_direction_mirrors_twice_to_itself() {
    for h in Heading::ALL.iter().copied().map(Some).chain([None]) {
        for v in [Some(Vertical::Up), Some(Vertical::Down), None] {
            if let Some(d) = Direction::new(h, v) {
                assert_eq!(d.mirrored().mirrored(), d);
                assert_eq!(d.vertically_flipped().vertically_flipped(), d);
            }
        }
    }
}

/// One SAT row: image bytes (any), a question, answers and the correct one.
fn sat_row() -> impl Strategy<Value = (Vec<Vec<u8>>, String, Vec<String>, String, String)> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3),
        answer_text(),
        prop::collection::vec(answer_text(), 0..30),
        answer_text(),
        prop::sample::select(vec!["ego_movement", "obj_closest", ""]).prop_map(str::to_string),
    )
}

proptest! {
    #![proptest_config(config(32))]

    /// SAT's parquet rows, through polars: any answers (up to 30), any correct one.
    #[test]
    fn the_sat_loader_survives_any_rows(rows in prop::collection::vec(sat_row(), 1..5), pick in any::<prop::sample::Index>()) {
        use polars::prelude::*;
        let n = rows.len();
        let images: Vec<Series> = rows.iter().map(|r| Series::new("".into(), r.0.clone())).collect();
        let answers: Vec<Series> = rows.iter().map(|r| Series::new("".into(), r.2.clone())).collect();
        // Half the rows name one of their own answers as correct.
        let correct: Vec<String> = rows.iter().map(|r| if r.2.is_empty() { r.3.clone() } else { r.2[pick.index(r.2.len())].clone() }).collect();
        let mut df = DataFrame::new(n, vec![
            Series::new("image_bytes".into(), images).into(),
            Series::new("question".into(), rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()).into(),
            Series::new("answers".into(), answers).into(),
            Series::new("question_type".into(), rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>()).into(),
            Series::new("correct_answer".into(), correct).into(),
        ]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("SAT_val.parquet");
        ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut df).unwrap();
        if let Ok(ds) = data::load(p.to_str().unwrap()) {
            for s in &ds.samples {
                prop_assert!(s.options.len() <= 26 && !s.images.is_empty());
                prop_assert!(s.gold_letter.is_some_and(|g| s.option(g).is_some()));
            }
        }
    }
}
