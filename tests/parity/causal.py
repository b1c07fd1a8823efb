"""flipscope's causal experiments computed with transformers, as the tests'
reference: the logit lens from forward hooks on the decoder layers, attention
knockout through a registered attention function that adds the same -inf
mask, activation patching through forward hooks (decoder layers and the
vision tower's merged output, in token order).

Usage: causal.py MODEL_DIR INPUTS.safetensors OUT.safetensors
  INPUTS  input_ids [1, T], pixel_values [N, D], mirrored_pixel_values [N, D],
          image_grid_thw [1, 3], window [1], target [1] (the knockout's token),
          edges [G, T, T] bool (query, key) edges blocked per group,
          patch_groups [P, T] bool positions patched per group,
          plus [1], minus [1] (LD = logit(plus) - logit(minus))
  OUT     resid [L, T, H], lens_last [L, V], knockout_logprob [L - W + 1, G],
          base_logprob [1], patch_effect [L, P], vision_patch_effect [P] (NaN
          where a group has no image token), clean_logits_last [V],
          corrupt_logits_last [V]
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AttentionInterface, Qwen2_5_VLForConditionalGeneration
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import eager_attention_forward

# What the knockout function blocks: a set of decoder layers and a [T, T] bool of (query, key) edges.
BLOCK = {"layers": set(), "edges": None}


def knockout_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    layer = getattr(module, "layer_idx", None)
    if layer is not None and layer in BLOCK["layers"]:
        add = torch.zeros(query.shape[2], key.shape[2], dtype=query.dtype)
        add[BLOCK["edges"]] = float("-inf")
        attention_mask = add[None, None] if attention_mask is None else attention_mask + add
    return eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **kwargs)


def main():
    model_dir, inputs_path, out_path = sys.argv[1:4]
    AttentionInterface.register("knockout", knockout_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register("knockout", eager_mask)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="knockout")
    model.eval()
    b = load_file(inputs_path)
    ids = b["input_ids"]
    image_token = model.config.image_token_id

    def forward(pixel_values):
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixel_values,
                     image_grid_thw=b["image_grid_thw"], mm_token_type_ids=(ids == image_token).int())

    layers = model.model.language_model.layers
    norm, head = model.model.language_model.norm, model.lm_head
    n_layers = len(layers)
    out = {}

    def hidden_of(output):
        return output[0] if isinstance(output, tuple) else output

    # 1. Logit lens: each decoder layer's output, before the final norm.
    captured = {}
    hooks = [layer.register_forward_hook(lambda m, a, o, i=i: captured.__setitem__(i, hidden_of(o).detach()))
             for i, layer in enumerate(layers)]
    with torch.no_grad():
        clean_logits = forward(b["pixel_values"]).logits[0, -1]
    for h in hooks:
        h.remove()
    resid = torch.stack([captured[i][0] for i in range(n_layers)])
    out["resid_post"] = resid
    with torch.no_grad():
        out["lens_last"] = head(norm(resid[:, -1]))

    # 2. Knockout: every window start, every edge group.
    window, target = int(b["window"][0]), int(b["target"][0])
    edges = b["edges"]
    table = torch.zeros(n_layers - window + 1, edges.shape[0])
    with torch.no_grad():
        out["base_logprob"] = clean_logits.log_softmax(-1)[target:target + 1]
        for g in range(edges.shape[0]):
            for w in range(n_layers - window + 1):
                BLOCK["layers"], BLOCK["edges"] = set(range(w, w + window)), edges[g]
                table[w, g] = forward(b["pixel_values"]).logits[0, -1].log_softmax(-1)[target]
        BLOCK["layers"] = set()
    out["knockout_logprob"] = table

    # 3. Patching: the clean run's layer outputs (and merged vision features)
    # copied into the mirrored run at each group's positions.
    plus, minus = int(b["plus"][0]), int(b["minus"][0])
    with torch.no_grad():
        corrupt_logits = forward(b["mirrored_pixel_values"]).logits[0, -1]
        merger_out = {}
        h = model.model.visual.register_forward_hook(lambda m, a, o: merger_out.__setitem__("clean", o.pooler_output.detach()))
        forward(b["pixel_values"])
        h.remove()
    ld = lambda logits: float(logits[plus] - logits[minus])
    ld_clean, ld_corrupt = ld(clean_logits), ld(corrupt_logits)
    groups = b["patch_groups"]
    effect = torch.zeros(n_layers, groups.shape[0])
    vision = torch.full((groups.shape[0],), float("nan"))
    image_positions = (ids[0] == image_token).nonzero().squeeze(1)
    with torch.no_grad():
        for g in range(groups.shape[0]):
            rows = groups[g]
            for l in range(n_layers):
                def patch_layer(m, a, o, l=l):
                    hidden = hidden_of(o).clone()
                    hidden[0, rows] = captured[l][0, rows]
                    return (hidden,) + tuple(o[1:]) if isinstance(o, tuple) else hidden
                h = layers[l].register_forward_hook(patch_layer)
                effect[l, g] = (ld(forward(b["mirrored_pixel_values"]).logits[0, -1]) - ld_corrupt) / (ld_clean - ld_corrupt)
                h.remove()
            in_image = rows[image_positions]
            if in_image.any():
                def patch_merger(m, a, o):
                    merged = o.pooler_output.clone()
                    merged[in_image] = merger_out["clean"][in_image]
                    o.pooler_output = merged
                    return o
                h = model.model.visual.register_forward_hook(patch_merger)
                vision[g] = (ld(forward(b["mirrored_pixel_values"]).logits[0, -1]) - ld_corrupt) / (ld_clean - ld_corrupt)
                h.remove()
    out["patch_effect"] = effect
    out["vision_patch_effect"] = vision
    out["clean_logits_last"] = clean_logits
    out["corrupt_logits_last"] = corrupt_logits
    save_file({k: v.float().contiguous() for k, v in out.items()}, out_path)


if __name__ == "__main__":
    main()
