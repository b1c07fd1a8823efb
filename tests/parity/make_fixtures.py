"""Build tiny random-weight Qwen2.5-VL checkpoints and HF transformers reference numbers.

Usage: python tests/parity/make_fixtures.py OUT_DIR

For every case OUT_DIR/<case>/ gets:
  model/            a checkpoint directory (config, weights, tokenizer, template)
  images/*.png      the prompt's images
  case.json         prompt text, image file names, what the case exercises
  reference.safetensors
      input_ids [1,L] i64, attention_mask [1,L] i64, pixel_values [N,1176] f32,
      image_grid_thw [n,3] i64, position_ids [3,1,L] i64, rope_deltas [1,1] i64,
      vision_embeds [N/4,H] f32, logits [1,L,V] f32, generated_ids [1,8] i64,
      saliency_target [1] i64 (argmax at the last position), grad_pixel_values [N,1176] f32
      (d logits[0, -1, target] / d pixel_values by torch autograd)

Inputs are built from the tokenizer and Qwen2VLImageProcessorPil directly (the
full processor wants torchvision for video), exactly as Qwen2_5_VLProcessor
does: each <|image_pad|> is expanded to grid_thw.prod() // merge**2 copies and
mm_token_type_ids marks image tokens with 1. Without mm_token_type_ids the
transformers 5 model silently falls back to 1D positions, so this script
checks that the reference positions really are 3D.
"""

import hashlib
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Qwen2.5-VL-Instruct's chat template; flipscope embeds the same file as its fallback.
with open(os.path.join(ROOT, "src", "engine", "qwen2_5_vl_chat_template.jinja")) as _f:
    CHAT_TEMPLATE = _f.read()

CORPUS = [
    "You are a helpful assistant.",
    "Is the red cube to the left of the blue ball? Answer with the option's letter.",
    "From the perspective of the boy, where is the dog? A. left B. right C. front D. back",
    "Which object is closer to the camera, the chair or the table?",
    "The cat is on top of the mat. The cup is under the table. behind in front of",
    "Locate the person in the image and output its bbox coordinates in JSON format.",
    "front-left front-right back-left back-right above below next to",
] * 20

# Vision windows are 112 px (4x4 merged tokens) as in the real model; the odd
# image resizes to a 6x9 merged grid, which is not a multiple of 4 either way.
CASES = {
    "flat_tied_odd": dict(
        layout="flat",  # flat config layout, visual.* / model.layers.* names
        tie=True,
        shards=False,
        template="tokenizer_config",
        images=[("odd.png", (301, 217))],
        prompt="From the perspective of the boy, where is the dog? A. left B. right",
        window_size=112,
        fullatt=[1, 3],
    ),
    "v5_sharded_two_images": dict(
        layout="v5",  # text_config layout, model.visual.* / model.language_model.* names
        tie=False,
        shards=True,
        template="jinja",
        images=[("exact.png", (224, 168)), ("small.png", (150, 100))],
        prompt="Is the red cube to the left of the blue ball? Answer with the option's letter.",
        window_size=56,
        fullatt=[2],
    ),
}

MIN_PIXELS = 56 * 56
MAX_PIXELS = 28 * 28 * 64


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def draw_image(path, size, seed):
    rng = np.random.default_rng(seed)
    w, h = size
    base = (rng.random((h, w, 3)) * 80 + 90).astype(np.uint8)
    img = Image.fromarray(base)
    d = ImageDraw.Draw(img)
    d.rectangle([w * 0.1, h * 0.3, w * 0.35, h * 0.7], fill=(220, 30, 30))
    d.ellipse([w * 0.6, h * 0.2, w * 0.9, h * 0.6], fill=(30, 40, 220))
    img.save(path)


def make_config(tok, case):
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    text = dict(
        vocab_size=448,
        hidden_size=64,
        intermediate_size=112,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0, mrope_section=[2, 3, 3]),
        initializer_range=0.1,
        tie_word_embeddings=case["tie"],
    )
    vision = dict(
        depth=4,
        hidden_size=32,
        intermediate_size=48,
        num_heads=2,
        out_hidden_size=64,
        window_size=case["window_size"],
        fullatt_block_indexes=case["fullatt"],
        tokens_per_second=2,
        initializer_range=0.1,
    )
    cfg = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=case["tie"],
    )
    # The real checkpoints carry these at the top level; transformers 5 also writes
    # its own (wrong for this vocabulary) defaults into text_config.
    cfg.bos_token_id = ids["<|endoftext|>"]
    cfg.eos_token_id = ids["<|im_end|>"]
    return cfg, ids


def to_flat_layout(model_dir, cfg_dict):
    """Rewrite a transformers 5 config into the older flat layout (weights keep the old names)."""
    text = cfg_dict.pop("text_config")
    flat = dict(cfg_dict)
    for k, v in text.items():
        if k in ("model_type", "dtype", "architectures"):
            continue
        flat.setdefault(k, v)
    rope = flat.pop("rope_parameters")
    flat["rope_theta"] = rope["rope_theta"]
    flat["rope_scaling"] = {"type": "mrope", "mrope_section": rope["mrope_section"]}
    flat["vision_config"].pop("rope_parameters", None)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(flat, f, indent=2)


def to_new_names(model_dir):
    """transformers 5 saves the old names; rewrite shards and index to model.visual.* / model.language_model.*."""

    def rename(name):
        if name.startswith("visual."):
            return "model." + name
        if name.startswith("model."):
            return "model.language_model." + name[len("model."):]
        return name

    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    with open(index_path) as f:
        index = json.load(f)
    for shard in sorted(set(index["weight_map"].values())):
        path = os.path.join(model_dir, shard)
        tensors = load_file(path)
        save_file({rename(k): v.contiguous() for k, v in tensors.items()}, path, metadata={"format": "pt"})
    index["weight_map"] = {rename(k): v for k, v in index["weight_map"].items()}
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)


def build_inputs(tok, proc, prompt, images, ids):
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_inputs = proc(images=images, return_tensors="pt")
    grid = image_inputs["image_grid_thw"]
    merge = proc.merge_size ** 2
    parts = text.split("<|image_pad|>")
    assert len(parts) == len(images) + 1
    expanded = parts[0]
    for i, g in enumerate(grid):
        expanded += "<|image_pad|>" * int(g.prod() // merge) + parts[i + 1]
    enc = tok(expanded, return_tensors="pt")
    input_ids = enc["input_ids"]
    mm = (input_ids == ids["<|image_pad|>"]).int()
    return text, input_ids, enc["attention_mask"], mm, image_inputs["pixel_values"], grid


def make_case(out, name, case, tok):
    cdir = os.path.join(out, name)
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(os.path.join(cdir, "images"))
    mdir = os.path.join(cdir, "model")
    torch.manual_seed(1234)
    cfg, ids = make_config(tok, case)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(mdir, max_shard_size="120KB" if case["shards"] else "1GB")
    tok.save_pretrained(mdir)
    if case["template"] == "tokenizer_config":
        os.remove(os.path.join(mdir, "chat_template.jinja")) if os.path.exists(
            os.path.join(mdir, "chat_template.jinja")) else None
        tc_path = os.path.join(mdir, "tokenizer_config.json")
        with open(tc_path) as f:
            tc = json.load(f)
        tc["chat_template"] = CHAT_TEMPLATE
        with open(tc_path, "w") as f:
            json.dump(tc, f, indent=2)
    else:
        assert os.path.exists(os.path.join(mdir, "chat_template.jinja"))
    proc = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    proc.save_pretrained(mdir)
    if case["layout"] == "flat":
        with open(os.path.join(mdir, "config.json")) as f:
            cfg_dict = json.load(f)
        to_flat_layout(mdir, cfg_dict)
    else:
        to_new_names(mdir)

    files = []
    images = []
    for i, (fname, size) in enumerate(case["images"]):
        path = os.path.join(cdir, "images", fname)
        draw_image(path, size, seed=i + 1)
        files.append(fname)
        images.append(Image.open(path).convert("RGB"))

    # Reload from disk: the reference must come from what Rust will read.
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(mdir, dtype=torch.float32).eval()
    proc = Qwen2VLImageProcessorPil.from_pretrained(mdir)
    text, input_ids, attn, mm, pixel_values, grid = build_inputs(tok, proc, case["prompt"], images, ids)
    with torch.no_grad():
        pos, deltas = model.model.get_rope_index(
            input_ids, mm_token_type_ids=mm, image_grid_thw=grid, attention_mask=attn
        )
        assert pos.shape[0] == 3 and not torch.equal(pos[0], pos[1]), "reference positions must be 3D"
        vis = model.model.get_image_features(pixel_values, grid, return_dict=True).pooler_output
        vis = torch.cat(list(vis), dim=0)
        out = model(
            input_ids=input_ids, attention_mask=attn, pixel_values=pixel_values,
            image_grid_thw=grid, mm_token_type_ids=mm,
        )
        gen = model.generate(
            input_ids=input_ids, attention_mask=attn, pixel_values=pixel_values,
            image_grid_thw=grid, mm_token_type_ids=mm, max_new_tokens=8, do_sample=False,
            eos_token_id=None, min_new_tokens=8,
        )[:, input_ids.shape[1]:]
    # Saliency reference: d logit[last, predicted] / d pixel_values by autograd.
    target = int(out.logits[0, -1].argmax())
    pv = pixel_values.clone().float().requires_grad_(True)
    sal = model(input_ids=input_ids, attention_mask=attn, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=mm)
    sal.logits[0, -1, target].backward()
    ref = {
        "saliency_target": torch.tensor([target], dtype=torch.long),
        "grad_pixel_values": pv.grad.float().contiguous(),
        "input_ids": input_ids.long(),
        "attention_mask": attn.long(),
        "pixel_values": pixel_values.float().contiguous(),
        "image_grid_thw": grid.long(),
        "position_ids": pos.long(),
        "rope_deltas": deltas.long().reshape(1, 1),
        "vision_embeds": vis.float().contiguous(),
        "logits": out.logits.float().contiguous(),
        "generated_ids": gen.long().contiguous(),
    }
    save_file(ref, os.path.join(cdir, "reference.safetensors"))
    with open(os.path.join(cdir, "case.json"), "w") as f:
        json.dump(
            {
                "prompt": case["prompt"],
                "images": files,
                "chat_text": text,
                "layout": case["layout"],
                "tied": case["tie"],
                "sharded": case["shards"],
                "template": case["template"],
            },
            f,
            indent=2,
        )
    print(f"{name}: L={input_ids.shape[1]} grid={grid.tolist()} generated={gen.tolist()}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "target/parity"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tok = build_tokenizer()
    for name, case in CASES.items():
        make_case(out, name, case, tok)
    # A stamp lets the Rust tests tell stale fixtures from current ones.
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(out, "STAMP"), "w") as f:
        f.write(digest + "\n")


if __name__ == "__main__":
    main()
