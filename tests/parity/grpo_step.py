"""One GRPO step's loss and gradients as TRL's GRPOTrainer defines them,
with torch + transformers (+ peft), on fixed rollouts: flipscope's GRPO
must match it.

Usage: grpo_step.py MODE POLICY_DIR REF BATCH.safetensors OUT_DIR NAMES
  MODE    lora: POLICY_DIR is the base model, REF the adapter folder; the
          reference policy is the same model with the adapter disabled.
          full: POLICY_DIR is the policy checkpoint, REF the reference one.
  BATCH   input_ids, attention_mask, pixel_values, image_grid_thw (the
          prompt + completion sequences, left-padded), completion_mask [B, L]
          (1 on completion tokens), old_logps [B, L-1] (the sampling
          policy's per-token log-probs), rewards [B], group [1],
          max_completion_length [1], epsilon [1], epsilon_high [1]
  NAMES   comma-separated canonical parameter names whose gradients to write

For each loss type (dapo, grpo, dr_grpo) and beta (0, 0.04) it computes the
loss exactly as TRL documents it and writes OUT_DIR/result.json (the losses)
and OUT_DIR/grads_<loss>_<beta>.safetensors. Groups whose rewards are all
equal carry no signal and are left out of the batch, as flipscope does.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration


def canonical(name):
    for prefix in ("base_model.model.",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    name = name.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
    return name.replace(".lora_A.default.weight", ".lora_A.weight").replace(".lora_B.default.weight", ".lora_B.weight")


def per_token_logps(model, b, rows):
    inputs = dict(
        input_ids=b["input_ids"][rows],
        attention_mask=b["attention_mask"][rows],
        pixel_values=b["pixel_values_rows"],
        image_grid_thw=b["image_grid_thw_rows"],
        mm_token_type_ids=(b["input_ids"][rows] == model.config.image_token_id).int(),
    )
    logits = model(**inputs).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, b["input_ids"][rows][:, 1:].unsqueeze(-1)).squeeze(-1)


def main():
    mode, policy_dir, ref, batch_path, out_dir, names = sys.argv[1:7]
    names = names.split(",")
    os.makedirs(out_dir, exist_ok=True)
    b = load_file(batch_path)
    policy = Qwen2_5_VLForConditionalGeneration.from_pretrained(policy_dir, dtype=torch.float32)
    reference = None
    if mode == "lora":
        from peft import PeftModel

        policy = PeftModel.from_pretrained(policy, ref, is_trainable=True)
    else:
        reference = Qwen2_5_VLForConditionalGeneration.from_pretrained(ref, dtype=torch.float32)
        reference.eval()
    policy.train()
    for p in policy.parameters():
        p.requires_grad_(True) if mode == "full" else None

    rewards, group = b["rewards"].double(), int(b["group"][0])
    g = rewards.view(-1, group)
    mean, std = g.mean(dim=1), g.std(dim=1)
    signal = (g != g[:, :1]).any(dim=1)
    # Keep the rows of groups with signal; their images, in batch order.
    rows = torch.cat([torch.arange(i * group, (i + 1) * group) for i in range(len(signal)) if signal[i]])
    grid = b["image_grid_thw"]
    patches = (grid[:, 0] * grid[:, 1] * grid[:, 2]).tolist()
    starts = [0]
    for n in patches:
        starts.append(starts[-1] + n)
    b["pixel_values_rows"] = torch.cat([b["pixel_values"][starts[r]:starts[r + 1]] for r in rows.tolist()])
    b["image_grid_thw_rows"] = grid[rows]
    mask = b["completion_mask"][rows][:, 1:].float()
    old = b["old_logps"][rows]
    eps_low, eps_high = float(b["epsilon"][0]), float(b["epsilon_high"][0])
    max_len = int(b["max_completion_length"][0])

    results = {}
    params = {canonical(n): p for n, p in policy.named_parameters()}
    for loss_type in ("dapo", "grpo", "dr_grpo"):
        for scale in ("group", "none"):
            for beta in (0.0, 0.04):
                adv = rewards.view(-1, group) - mean.unsqueeze(1)
                if scale == "group":
                    adv = adv / (std.unsqueeze(1) + 1e-4)
                adv = adv.reshape(-1)[rows].float()
                policy.zero_grad()
                logps = per_token_logps(policy, b, rows)
                coef_1 = torch.exp(logps - old)
                coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
                per_token_loss = -torch.min(coef_1 * adv.unsqueeze(1), coef_2 * adv.unsqueeze(1))
                if beta != 0.0:
                    with torch.no_grad():
                        if mode == "lora":
                            with policy.disable_adapter():
                                ref_logps = per_token_logps(policy, b, rows)
                        else:
                            ref_logps = per_token_logps(reference, b, rows)
                    kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
                    per_token_loss = per_token_loss + beta * kl
                if loss_type == "grpo":
                    loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
                elif loss_type == "dr_grpo":
                    loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_len)
                else:
                    loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
                loss.backward()
                key = f"{loss_type}_{scale}_{beta}"
                results[key] = float(loss)
                save_file({n: params[n].grad.detach().contiguous() for n in names}, os.path.join(out_dir, f"grads_{key}.safetensors"))
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump({"losses": results, "rows": rows.tolist()}, f, indent=2)


if __name__ == "__main__":
    main()
