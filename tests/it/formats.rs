//! Every supported format, on small fixtures written in the real layout
//! (parquet through polars, TSV with base64 images, JSON and JSONL).

use base64::Engine as _;
use flipscope::data::{self, AnswerStyle, Format, ImageSource};
use flipscope::spatial::{Direction, Heading, Vertical};
use polars::prelude::*;
use std::path::Path;

fn png(color: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 6, image::Rgb(color));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An `image` column of `{bytes, path}` structs, as HF parquet files carry.
fn image_struct(bytes: Vec<Vec<u8>>, paths: &[&str]) -> Series {
    let n = bytes.len();
    let bytes = Series::new("bytes".into(), bytes);
    let paths = Series::new("path".into(), paths.to_vec());
    StructChunked::from_series("image".into(), n, [bytes, paths].iter()).unwrap().into_series()
}

fn write_parquet(path: &Path, mut df: DataFrame) {
    let mut f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(&mut f).finish(&mut df).unwrap();
}

fn decodes(src: &ImageSource) -> (u32, u32) {
    let img = data::images::decode(src).unwrap();
    (img.width(), img.height())
}

#[test]
fn whatsup_controlled_and_coco() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("controlled_images")).unwrap();
    std::fs::write(d.join("controlled_images/mug_on_table.jpeg"), png([1, 2, 3])).unwrap();
    let controlled = r#"[{"image_path": "data/controlled_images/mug_on_table.jpeg",
        "caption_options": ["A mug on a table", "A mug under a table", "A mug to the left of a table", "A mug to the right of a table"]}]"#;
    std::fs::write(d.join("controlled_images_dataset.json"), controlled).unwrap();
    let ds = data::load(d.join("controlled_images_dataset.json").to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::WhatsUp);
    let s = &ds.samples[0];
    assert_eq!(s.gold_text.as_deref(), Some("A mug on a table"), "caption 0 is gold");
    assert_eq!(s.gold_direction, Some(Direction::vertical(Vertical::Up)));
    assert_eq!(s.options.len(), 4);
    assert_eq!(ds.missing_images(1).0, 0, "data/ prefix stripped and re-anchored");

    std::fs::write(d.join("coco_qa_one_obj.json"), r#"[[139, "A dog to the left of the picture", "A dog to the right of the picture"]]"#)
        .unwrap();
    let ds = data::load(d.join("coco_qa_one_obj.json").to_str().unwrap()).unwrap();
    let s = &ds.samples[0];
    assert_eq!(s.options.len(), 2);
    assert_eq!(s.gold_direction, Some(Direction::horizontal(Heading::Left)));
    assert!(s.images[0].label().ends_with("val2017/000000000139.jpg"), "{}", s.images[0].label());
}

#[test]
fn adaptvis_prompts_join_whatsup_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("prompts")).unwrap();
    let controlled = r#"[{"image_path": "data/controlled_images/a.jpeg", "caption_options": ["A on B", "A under B", "A left of B", "A right of B"]},
        {"image_path": "data/controlled_images/b.jpeg", "caption_options": ["A left of B", "A under B", "A on B", "A right of B"]}]"#;
    std::fs::write(d.join("controlled_images_dataset.json"), controlled).unwrap();
    let lines = [
        r#"{"id": 1, "question": "<image>\nUSER: Where is the mug in relation to the table? Answer with left, right, on or under.\nASSISTANT:", "answer": ["Left"]}"#,
        r#"{"id": 7, "question": "<image>\nUSER: Where is it? Answer with left, right, on or under.\nASSISTANT:", "answer": ["On"]}"#,
    ];
    let p = d.join("prompts/Controlled_Images_A_with_answer_four_options.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::AdaptVis);
    assert_eq!(ds.samples.len(), 1);
    let s = &ds.samples[0];
    assert_eq!(s.question, "Where is the mug in relation to the table? Answer with left, right, on or under.");
    assert_eq!(s.answer_style, AnswerStyle::Word);
    assert_eq!(s.options.iter().map(|o| o.text.as_str()).collect::<Vec<_>>(), ["left", "right", "on", "under"]);
    assert_eq!(s.gold_letter, Some('A'));
    assert!(s.images[0].label().ends_with("controlled_images/b.jpeg"));
    let issue = ds.issues[0].to_string();
    assert!(issue.contains("line 2: field `id`: 7 is outside the WhatsUp file (2 entries)"), "{issue}");
}

/// AdaptVis's `prompts/VSR_with_answer.jsonl`: ids are line indices into
/// VSR's zeroshot test.jsonl, answers relation phrases read in generate mode.
#[test]
fn adaptvis_vsr_prompts_index_vsr_test_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("prompts")).unwrap();
    std::fs::create_dir_all(d.join("vsr/zeroshot")).unwrap();
    let vsr = [
        r#"{"image": "000000085637.jpg", "caption": "The car is behind the suitcase.", "label": 1, "relation": "behind"}"#,
        r#"{"image": "000000000001.jpg", "caption": "The cat is far from the bed.", "label": 0, "relation": "far from"}"#,
        r#"{"image": "000000000002.jpg", "caption": "The cat is on top of the car.", "label": 1, "relation": "on top of"}"#,
    ];
    std::fs::write(d.join("vsr/zeroshot/test.jsonl"), vsr.join("\n")).unwrap();
    let lines = [
        r#"{"id": 0, "question": "<image>\nUSER: Where is the car in relation to suitcase? Answer with one word or phrase.\nASSISTANT:", "answer": "behind"}"#,
        r#"{"id": 2, "question": "<image>\nUSER: Where is the cat in relation to car? Answer with one word or phrase.\nASSISTANT:", "answer": "on top of"}"#,
        r#"{"id": 9, "question": "<image>\nUSER: Where is it? Answer with one word or phrase.\nASSISTANT:", "answer": "touching"}"#,
    ];
    let p = d.join("prompts/VSR_with_answer.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let coco = d.join("coco");
    let spec = format!("{}#vsr={},root={}", p.display(), d.join("vsr/zeroshot/test.jsonl").display(), coco.display());
    let ds = data::load(&spec).unwrap();
    assert_eq!(ds.format, Format::AdaptVis, "detected from the file name");
    assert_eq!(ds.samples.len(), 2);
    let s = &ds.samples[1];
    assert_eq!((s.id.as_str(), s.answer_style), ("VSR/2", AnswerStyle::Relation));
    assert_eq!(s.question, "Where is the cat in relation to car? Answer with one word or phrase.");
    assert_eq!((s.gold_text.as_deref(), s.options.len()), (Some("on top of"), 0));
    assert!(s.images[0].label().ends_with("coco/000000000002.jpg"), "{}", s.images[0].label());
    assert!(ds.issues[0].to_string().contains("line 3: field `id`: 9 is outside VSR's test.jsonl (3 lines)"), "{}", ds.issues[0]);
    // Found on its own next to the prompts, and refused with advice when it is not there.
    std::fs::rename(d.join("vsr/zeroshot"), d.join("zeroshot")).unwrap();
    assert_eq!(data::load(p.to_str().unwrap()).unwrap().samples.len(), 2);
    std::fs::remove_dir_all(d.join("zeroshot")).unwrap();
    let err = data::load(p.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("VSR's zeroshot test.jsonl was not found") && err.contains("#vsr=PATH"), "{err}");
    // Generate-mode answers are judged by relation phrase.
    let prompt = flipscope::eval::PromptTemplate::default_prompt();
    let read = |text: &str| flipscope::eval::judge::judge(s, &flipscope::eval::judge::extract(&prompt, s, text));
    assert_eq!(read("It is on top of the car.").verdict, flipscope::spatial::Verdict::Correct);
    assert!(matches!(read("on").verdict, flipscope::spatial::Verdict::Wrong(_)));
}

#[test]
fn vsr_is_a_yes_no_question() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("test.jsonl");
    let lines = [
        r#"{"image": "000000085637.jpg", "caption": "The cat is left of the dog.", "label": 1, "relation": "left of", "subj": "cat", "obj": "dog", "annotator_id": 3, "vote_true_validator_id": "[2, 9]", "vote_false_validator_id": "[]"}"#,
        r#"{"image": "000000085638.jpg", "caption": "The cup is on the table.", "label": 0, "relation": "on", "subj": "cup", "obj": "table"}"#,
        r#"{"image": "x.jpg", "caption": "broken", "label": 5, "relation": "near"}"#,
    ];
    std::fs::write(&p, lines.join("\n")).unwrap();
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::Vsr);
    assert_eq!(ds.samples.len(), 2);
    let (a, b) = (&ds.samples[0], &ds.samples[1]);
    assert_eq!(a.answer_style, AnswerStyle::YesNo);
    assert_eq!(a.gold_text.as_deref(), Some("yes"));
    assert_eq!(a.gold_direction, Some(Direction::horizontal(Heading::Left)));
    assert_eq!(a.reference.as_deref(), Some("dog"));
    assert_eq!(a.metadata["vote_true_validator_id"], serde_json::json!([2, 9]));
    assert_eq!(b.gold_text.as_deref(), Some("no"));
    assert_eq!(b.gold_direction, None, "a false statement names no direction");
    assert!(ds.issues[0].to_string().contains("line 3: field `label`: expected 0 or 1"), "{}", ds.issues[0]);
}

#[test]
fn cvbench_parquet_with_embedded_struct_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_struct(vec![png([9, 9, 9]), png([1, 1, 1])], &["img/2D/relation/a.png", "img/2D/relation/b.png"]);
    let choices =
        Series::new("choices".into(), vec![Series::new("".into(), vec!["left", "right"]), Series::new("".into(), vec!["1", "2", "3"])]);
    let df = DataFrame::new(
        2,
        vec![
            Series::new("idx".into(), vec![0i64, 1]).into(),
            Series::new("type".into(), vec!["2D", "2D"]).into(),
            Series::new("task".into(), vec!["Relation", "Count"]).into(),
            Series::new("question".into(), vec!["Is the lamp left or right of the bed?", "How many chairs?"]).into(),
            choices.into(),
            Series::new("answer".into(), vec!["(B)", "(C)"]).into(),
            Series::new("filename".into(), vec!["img/2D/relation/a.png", "img/2D/count/b.png"]).into(),
            Series::new("source".into(), vec!["ADE20K", "COCO"]).into(),
            image.into(),
        ],
    )
    .unwrap();
    let p = dir.path().join("test_2d.parquet");
    write_parquet(&p, df);
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::CvBench);
    assert!(ds.issues.is_empty(), "{:?}", ds.issues);
    let s = &ds.samples[0];
    assert_eq!(s.category, "2D Relation");
    assert_eq!(s.gold_text.as_deref(), Some("right"));
    assert_eq!(s.gold_direction, Some(Direction::horizontal(Heading::Right)));
    assert_eq!(decodes(&s.images[0]), (8, 6));
    assert_eq!(ds.samples[1].gold_text.as_deref(), Some("3"));
    assert_eq!(ds.samples[1].gold_direction, None);

    // JSONL with images under img/.
    std::fs::create_dir_all(dir.path().join("img/2D/relation")).unwrap();
    std::fs::write(dir.path().join("img/2D/relation/a.png"), png([3, 3, 3])).unwrap();
    let line = r#"{"idx": 0, "type": "2D", "task": "Relation", "question": "Q?", "choices": ["left", "right"], "answer": "(A)", "filename": "img/2D/relation/a.png"}"#;
    let pj = dir.path().join("test.jsonl");
    std::fs::write(&pj, line).unwrap();
    let ds = data::load(pj.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::CvBench);
    assert_eq!(decodes(&ds.samples[0].images[0]), (8, 6));
}

#[test]
fn sat_parquet_shuffles_text_answers_with_a_fixed_seed() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = Series::new(
        "image_bytes".into(),
        vec![Series::new("".into(), vec![png([1, 0, 0]), png([0, 1, 0])]), Series::new("".into(), vec![png([0, 0, 1])])],
    );
    let answers = Series::new(
        "answers".into(),
        vec![Series::new("".into(), vec!["left", "right"]), Series::new("".into(), vec!["the chair", "the table", "the lamp", "the door"])],
    );
    let df = DataFrame::new(
        2,
        vec![
            imgs.into(),
            Series::new("question".into(), vec!["Which way did the camera turn?", "What is closest?"]).into(),
            answers.into(),
            Series::new("question_type".into(), vec!["ego_movement", "obj_closest"]).into(),
            Series::new("correct_answer".into(), vec!["right", "the lamp"]).into(),
        ],
    )
    .unwrap();
    let p = dir.path().join("SAT_val.parquet");
    write_parquet(&p, df);
    let a = data::load(p.to_str().unwrap()).unwrap();
    let b = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(a.format, Format::Sat);
    assert_eq!(a.samples, b.samples, "same order every load");
    let s = &a.samples[0];
    assert_eq!(s.images.len(), 2);
    assert_eq!(s.gold_text.as_deref(), Some("right"));
    assert_eq!(s.gold_direction, Some(Direction::horizontal(Heading::Right)));
    let s1 = &a.samples[1];
    assert_eq!(s1.option(s1.gold_letter.unwrap()).unwrap().text, "the lamp");
    assert_eq!(s1.split.as_deref(), Some("val"));
}

#[test]
fn clevr_parquet_reads_answer_tags() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_struct(vec![png([5, 5, 5]), png([6, 6, 6])], &["a.png", "b.png"]);
    let df = DataFrame::new(
        2,
        vec![
            image.into(),
            Series::new("problem".into(), vec!["How many cubes?", "Is there a sphere?"]).into(),
            Series::new("solution".into(), vec!["<answer> 3 </answer>", "<answer>yes</answer>"]).into(),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let p = dir.path().join("data/train-00000-of-00001.parquet");
    write_parquet(&p, df);
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::Clevr);
    assert_eq!(ds.samples[0].gold_text.as_deref(), Some("3"));
    assert_eq!(ds.samples[0].answer_style, AnswerStyle::Number);
    assert_eq!(ds.samples[1].answer_style, AnswerStyle::YesNo);
    assert_eq!(decodes(&ds.samples[0].images[0]), (8, 6));
}

#[test]
fn vlmeval_tsv_base64_index_refs_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = |c| base64::engine::general_purpose::STANDARD.encode(png(c));
    let rows = [
        "index\timage\tquestion\tA\tB\tC\tanswer\tcategory\thint".to_string(),
        format!("10\t{}\tWhere is the cat?\tleft\tright\tabove\tB\tspatial\tnan", b64([1, 2, 3])),
        "11\t10\tAnd the dog?\tleft\tright\tabove\tA\tspatial\tLook closely".to_string(),
        format!("12\t['{}', '{}']\tCompare.\tfront\tback\t\tA\tmulti\tnan", b64([4, 5, 6]), b64([7, 8, 9])),
        "13\t99\tBroken ref\tleft\tright\t\tA\tspatial\tnan".to_string(),
    ];
    let p = dir.path().join("ViewSpatialMini.tsv");
    std::fs::write(&p, rows.join("\n")).unwrap();
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::VlmEvalTsv);
    assert_eq!(ds.samples.len(), 3);
    let s10 = &ds.samples[0];
    assert_eq!(s10.gold_direction, Some(Direction::horizontal(Heading::Right)));
    assert_eq!(s10.options.len(), 3);
    let s11 = &ds.samples[1];
    assert_eq!(s11.images, s10.images, "index reference reuses row 10's image");
    assert!(s11.question.starts_with("Hint: Look closely\n"));
    let s12 = &ds.samples[2];
    assert_eq!(s12.images.len(), 2);
    assert_eq!(s12.options.len(), 2, "empty option cells end the option list");
    assert_eq!(decodes(&s12.images[1]), (8, 6));
    let issue = ds.issues[0].to_string();
    assert!(issue.contains("line 5: field `image`: refers to index `99`"), "{issue}");
}

#[test]
fn generic_jsonl_with_column_mapping_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), png([1, 1, 1])).unwrap();
    let lines = [
        r#"{"uid": "s1", "img": "a.png", "prompt": "Where is the cup?", "opts": ["front-left", "back"], "label": "A", "perspective": "person", "boxes": [[1, 2, 5, 6]], "split": "test"}"#,
        r#"{"uid": "s2", "img": ["a.png", "a.png"], "prompt": "Where?", "opts": {"A": "up", "B": "down"}, "label": "down", "split": "train"}"#,
        r#"{"uid": "s3", "img": "a.png", "prompt": "Where?", "opts": ["up"], "label": "Z"}"#,
    ];
    let p = dir.path().join("mine.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let spec = format!("generic:{}#id=uid,images=img,question=prompt,options=opts,answer=label", p.display());
    let ds = data::load(&spec).unwrap();
    assert_eq!(ds.samples.len(), 2);
    assert_eq!(ds.samples[0].gold_direction, Some(Direction::horizontal(Heading::FrontLeft)));
    assert_eq!(ds.samples[0].boxes[0].x1, 5.0);
    assert_eq!(ds.samples[1].gold_letter, Some('B'));
    assert_eq!(ds.samples[1].images.len(), 2);
    assert!(ds.issues[0].to_string().contains("line 3: field `label`: `Z` is neither"), "{}", ds.issues[0]);
    let only_test = data::load(&format!("{spec},split=test")).unwrap();
    assert_eq!(only_test.samples.len(), 1);

    let bad = data::load(&format!("generic:{}#questoin=prompt", p.display())).unwrap_err().to_string();
    assert!(bad.contains("unknown column mapping `questoin`"), "{bad}");

    let df = DataFrame::new(
        1,
        vec![
            Series::new("image".into(), vec![png([2, 2, 2])]).into(),
            Series::new("question".into(), vec!["Where?"]).into(),
            Series::new("options".into(), vec![Series::new("".into(), vec!["left", "right"])]).into(),
            Series::new("answer".into(), vec!["B"]).into(),
        ],
    )
    .unwrap();
    let pq = dir.path().join("mine.parquet");
    write_parquet(&pq, df);
    let ds = data::load(pq.to_str().unwrap()).unwrap();
    assert_eq!(ds.format, Format::Generic);
    assert_eq!(ds.samples[0].gold_text.as_deref(), Some("right"));
    assert_eq!(decodes(&ds.samples[0].images[0]), (8, 6));
}

#[test]
fn malformed_inputs_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.jsonl");
    std::fs::write(&p, "{\"image\": \"a\", \"caption\": \"c\", \"label\": 1, \"relation\": \"on\"}\n{not json}\n").unwrap();
    // One bad line is skipped and reported, naming the file and line; the rest load.
    let ds = data::load(p.to_str().unwrap()).unwrap();
    assert_eq!(ds.samples.len(), 1);
    let issue = ds.issues[0].to_string();
    assert!(issue.contains("v.jsonl: line 2: field `(line)`: invalid JSON"), "{issue}");
    // With no good line left, the load fails and says why.
    std::fs::write(&p, "{not json}\n").unwrap();
    let err = data::load(&format!("vsr:{}", p.display())).unwrap_err().to_string();
    assert!(err.contains("no usable samples") && err.contains("line 1"), "{err}");

    let unknown = dir.path().join("x.csv");
    std::fs::write(&unknown, "a,b").unwrap();
    let err = data::load(unknown.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("cannot tell the dataset format") && err.contains("viewspatial, whatsup"), "{err}");

    let err = data::load("nosuchkind:/tmp/x").unwrap_err().to_string();
    assert!(err.contains("unknown dataset kind `nosuchkind`"), "{err}");

    let missing = data::load("/definitely/not/here.json").unwrap_err().to_string();
    assert!(missing.contains("/definitely/not/here.json") && missing.contains("no such file"), "{missing}");

    let p = dir.path().join("corrupt.parquet");
    std::fs::write(&p, b"PAR1 this is not parquet").unwrap();
    let err = data::load(&format!("cvbench:{}", p.display())).unwrap_err().to_string();
    assert!(err.contains("corrupt.parquet") && err.contains("parquet"), "{err}");

    // A corrupt image is an error naming the file when decoded, not at load.
    let img = dir.path().join("bad.png");
    std::fs::write(&img, b"not a png").unwrap();
    let err = data::images::decode(&ImageSource::Path(img)).unwrap_err().to_string();
    assert!(err.contains("bad.png: cannot decode image"), "{err}");
}
