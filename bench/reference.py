"""HF transformers' side of `flipscope bench`: the same figures on the same
checkpoint and inputs (bench inputs.safetensors written by flipscope).

Usage: reference.py MODEL_DIR INPUTS FIGURES(comma list) THREADS DEVICE DTYPE REPEAT OUT_JSON

Figures: load, prefill, decode, eval (forward-only scoring and the
ViewSpatial/lmms-eval way: generate up to 16 tokens, then find the letter),
saliency (one backward to the pixels), train (one LoRA step with peft),
rollout (8 sampled completions of 64 tokens per prompt with
generate(num_return_sequences=8)), grpo (one GRPO step as TRL computes it:
those rollouts, then the dapo loss with the k3 KL against the adapter-off
reference, backward and AdamW; rewards fixed at 1, 0, 1, 0, ...).
Peak memory: VmHWM after writing 5 to /proc/self/clear_refs on the CPU;
nvidia-smi's figure for this process on CUDA (what flipscope reports too).
"""
import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

EVAL_MAX_NEW = 16
DECODE_TOKENS = 64
GROUP, ROLLOUT_TOKENS, ROLLOUT_PROMPTS, GRPO_BETA = 8, 64, 2, 0.04


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_gib(device):
    if device.type == "cuda":
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True).stdout
        for line in out.splitlines():
            pid, mib = [x.strip() for x in line.split(",")]
            if pid == str(os.getpid()):
                return int(mib) / 1024
        return 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(repeat, fn, device):
    """Seconds per run: one untimed warm-up, then the fastest of `repeat`
    runs (the work is deterministic and a shared VM's stalls only add time;
    flipscope's side does the same)."""
    fn()
    sync(device)
    runs = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - start)
    return min(runs)


def measured(out, name, repeat, fn, device):
    """`name`_s: the fastest run of `fn`; `name`_peak_gib: peak memory through them."""
    reset_peak()
    out[f"{name}_s"] = timed(repeat, fn, device)
    out[f"{name}_peak_gib"] = peak_gib(device)


def update(loss, params, opt):
    """One optimizer step: backward, clip the global norm to 1, AdamW."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def batch_of(prompts, image_token, pad, device, dtype, extra=None):
    """Left-padded batch as the processor would give it (plus mm_token_type_ids,
    without which transformers 5 gives image tokens text positions)."""
    seqs = [p["input_ids"].tolist() + (extra or []) for p in prompts]
    longest = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (longest - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (longest - len(s)) + [1] * len(s) for s in seqs])
    return dict(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        mm_token_type_ids=(ids == image_token).long().to(device),
        pixel_values=torch.cat([p["pixel_values"] for p in prompts]).to(device, dtype),
        image_grid_thw=torch.cat([p["image_grid_thw"] for p in prompts]).to(device),
    )


def main():
    model_dir, inputs_path, figures, threads, device, dtype, repeat, out_json = sys.argv[1:9]
    figures, repeat = figures.split(","), int(repeat)
    torch.set_num_threads(int(threads))
    device = torch.device(device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    from transformers import Qwen2_5_VLForConditionalGeneration

    raw = load_file(inputs_path)
    prompt = lambda name: {k: raw[f"{name}.{k}"] for k in ("input_ids", "pixel_values", "image_grid_thw")}
    prefill = prompt("prefill")
    evals = [prompt(f"eval.{i}") for i in range(64)]
    letters = raw["letters"].tolist()
    answer = raw["answer"].tolist()
    out = {}

    reset_peak()
    start = time.perf_counter()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    sync(device)
    out["load_s"] = time.perf_counter() - start
    out["load_peak_gib"] = peak_gib(device)
    cfg = model.config
    image_token = cfg.image_token_id
    pad = cfg.pad_token_id if getattr(cfg, "pad_token_id", None) is not None else 0
    batch = lambda ps, extra=None: batch_of(ps, image_token, pad, device, dtype, extra)

    if "prefill" in figures:
        inp = batch([prefill])
        with torch.no_grad():
            # transformers maps the weights lazily: the first forward reads them.
            start = time.perf_counter()
            model(**inp, logits_to_keep=1)
            sync(device)
            out["first_prefill_s"] = time.perf_counter() - start
            out["first_answer_s"] = out["load_s"] + out["first_prefill_s"]
            out["prefill_s"] = timed(repeat, lambda: model(**inp, logits_to_keep=1), device)
            # The vision tower on its own: says which half of a prefill a gap is in.
            out["prefill_vision_s"] = timed(
                repeat, lambda: model.model.visual(inp["pixel_values"], grid_thw=inp["image_grid_thw"]), device)
        out["first_prefill_peak_gib"] = peak_gib(device)

    if "decode" in figures:
        inp = batch([prefill])
        gen = dict(do_sample=False, min_new_tokens=DECODE_TOKENS + 1, max_new_tokens=DECODE_TOKENS + 1, pad_token_id=pad)
        with torch.no_grad():
            # 65 tokens minus 1: the 64 decoding steps alone, as flipscope times them.
            t_all = timed(repeat, lambda: model.generate(**inp, **gen), device)
            one = dict(gen, min_new_tokens=1, max_new_tokens=1)
            t_one = timed(repeat, lambda: model.generate(**inp, **one), device)
        out["decode_tok_s"] = DECODE_TOKENS / max(t_all - t_one, 1e-9)

    if "eval" in figures:
        letter_ids = torch.tensor(letters, device=device)

        picks = []

        def score(b):
            picks.clear()
            for i in range(0, len(evals), b):
                logits = model(**batch(evals[i:i + b]), logits_to_keep=1).logits[:, -1].float()
                picks.extend(logits.log_softmax(-1)[:, letter_ids].argmax(-1).tolist())

        def generate(b):
            gen = dict(do_sample=False, max_new_tokens=EVAL_MAX_NEW, pad_token_id=pad)
            for i in range(0, len(evals), b):
                inp = batch(evals[i:i + b])
                seqs = model.generate(**inp, **gen)[:, inp["input_ids"].shape[1]:].tolist()
                # The letter extraction: first option letter among the new tokens.
                [next((t for t in s if t in letters), None) for s in seqs]

        with torch.no_grad():
            for b in (1, 8):
                out[f"eval_b{b}_sps"] = len(evals) / timed(repeat, lambda: score(b), device)
                out[f"eval_gen_b{b}_sps"] = len(evals) / timed(repeat, lambda: generate(b), device)
        out["eval_picks"] = picks

    if "saliency" in figures:
        inp = batch([prefill])

        def backward():
            pv = inp["pixel_values"].detach().float().requires_grad_(True)
            args = dict(inp, pixel_values=pv.to(dtype))
            logit = model(**args, logits_to_keep=1).logits[0, -1, letters[0]].float()
            (grad,) = torch.autograd.grad(logit, pv)
            grad.sum().item()

        measured(out, "saliency", repeat, backward, device)

    lora = None

    def attach_lora():
        from peft import LoraConfig, get_peft_model

        targets = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
        wrapped = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets))
        wrapped.train()
        return wrapped, [p for p in wrapped.parameters() if p.requires_grad]

    if "train" in figures:
        lora, params = attach_lora()
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        inp = batch(evals[:8], extra=answer)
        labels = inp["input_ids"].clone()
        labels[:, : labels.shape[1] - len(answer)] = -100

        measured(out, "train", repeat, lambda: update(lora(**inp, labels=labels).loss, params, opt), device)

    # Both sides sample with the adapter on, as a GRPO policy does.
    if ("rollout" in figures or "grpo" in figures) and lora is None:
        lora, params = attach_lora()
    vision_ids = [cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id]
    sample = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, num_return_sequences=GROUP,
                  min_new_tokens=ROLLOUT_TOKENS, max_new_tokens=ROLLOUT_TOKENS, pad_token_id=pad,
                  suppress_tokens=vision_ids)

    if "rollout" in figures:
        lora.eval()

        def roll():
            with torch.no_grad():
                for p in evals[:ROLLOUT_PROMPTS]:
                    lora.generate(**batch([p]), **sample)

        reset_peak()
        out["rollout_tok_s"] = ROLLOUT_PROMPTS * GROUP * ROLLOUT_TOKENS / timed(repeat, roll, device)
        out["rollout_peak_gib"] = peak_gib(device)

    if "grpo" in figures:
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        inp = batch([evals[0]])
        prompt_len = inp["input_ids"].shape[1]
        rewards = torch.tensor([float(j % 2) for j in range(GROUP)])
        adv = ((rewards - rewards.mean()) / (rewards.std() + 1e-4)).to(device).unsqueeze(1)

        def completion_logps(seqs):
            full = dict(input_ids=seqs, attention_mask=torch.ones_like(seqs),
                        mm_token_type_ids=(seqs == image_token).long(),
                        pixel_values=inp["pixel_values"].repeat(GROUP, 1),
                        image_grid_thw=inp["image_grid_thw"].repeat(GROUP, 1))
            logits = lora(**full, logits_to_keep=ROLLOUT_TOKENS + 1).logits[:, :-1].float()
            return logits.log_softmax(-1).gather(-1, seqs[:, prompt_len:].unsqueeze(-1)).squeeze(-1)

        def grpo_step():
            lora.eval()
            with torch.no_grad():
                seqs = lora.generate(**inp, **sample)
            lora.train()
            logps = completion_logps(seqs)
            with torch.no_grad(), lora.disable_adapter():
                ref = completion_logps(seqs)
            ratio = torch.exp(logps - logps.detach())
            per_token = -torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)
            per_token = per_token + GRPO_BETA * (torch.exp(ref - logps) - (ref - logps) - 1)
            update(per_token.sum() / per_token.numel(), params, opt)

        measured(out, "grpo", repeat, grpo_step, device)

    with open(out_json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
