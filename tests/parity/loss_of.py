"""The mean answer-token loss transformers computes for a checkpoint on a batch.

Usage: loss_of.py MODEL_DIR BATCH.safetensors OUT.json
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration


def main():
    model_dir, batch_path, out = sys.argv[1:4]
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    b = load_file(batch_path)
    with torch.no_grad():
        loss = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], pixel_values=b["pixel_values"],
                     image_grid_thw=b["image_grid_thw"], labels=b["labels"],
                     mm_token_type_ids=(b["input_ids"] == model.config.image_token_id).int()).loss
    with open(out, "w") as f:
        json.dump({"loss": float(loss)}, f)


if __name__ == "__main__":
    main()
