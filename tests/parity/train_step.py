"""One reference for flipscope's training step: HF transformers + peft.

Usage: train_step.py MODEL_DIR ADAPTER_DIR BATCH.safetensors OUT_DIR STEPS LR WEIGHT_DECAY MAX_GRAD_NORM

Loads the base model (f32, CPU), attaches the adapter flipscope saved
(`PeftModel.from_pretrained`, trainable), runs STEPS optimizer steps of
AdamW on the same batch with gradient clipping, and writes:
  OUT_DIR/result.json   losses and pre-clip gradient norms per step,
                        which adapter keys peft loaded, missing/unexpected keys
  OUT_DIR/after.safetensors  the adapter weights after the last step (peft names)
"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration


def main():
    model_dir, adapter_dir, batch_path, out_dir = sys.argv[1:5]
    steps, lr, wd, max_norm = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    model.train()
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    state = model.state_dict()
    # Every saved tensor must have landed on a LoRA module, unchanged.
    loaded = []
    for name, t in saved.items():
        key = name.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        assert key in state, f"peft did not create {key}"
        assert torch.equal(state[key], t), f"{key} differs from the saved adapter"
        loaded.append(key)
    lora_modules = sorted({n.rsplit(".lora_", 1)[0] for n in state if ".lora_A." in n})
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    assert all(".lora_" in n for n, p in model.named_parameters() if p.requires_grad)

    batch = load_file(batch_path)
    inputs = dict(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        image_grid_thw=batch["image_grid_thw"],
        labels=batch["labels"],
        # What the v5 processor returns beside input_ids; without it the
        # model gives every token a text (1D) position.
        mm_token_type_ids=(batch["input_ids"] == model.config.image_token_id).int(),
    )
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=(0.9, 0.999), eps=1e-8)
    losses, norms = [], []
    for _ in range(steps):
        out = model(**inputs)
        out.loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        opt.step()
        opt.zero_grad()
        losses.append(float(out.loss))
    after = {}
    for n, p in model.named_parameters():
        if ".lora_" in n:
            after[n.replace(".default.weight", ".weight")] = p.detach().contiguous()
    save_file(after, os.path.join(out_dir, "after.safetensors"))
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump({"losses": losses, "grad_norms": norms, "lora_modules": lora_modules, "loaded": len(loaded)}, f, indent=2)


if __name__ == "__main__":
    main()
