"""Do a trained top-down run's masks track the synthetic data's planted genuine/decoy flags?

For a run trained on the synthetic default, prints per modality the correlation between the
mask on the signal ("A") features and each word's genuine/decoy flag (recovered from the text,
whose dominant direction is that flag), and for every modality how well a linear probe reads
the flag from the Stage-I representation r_k (held-out accuracy; 0.5 = not at all). Usage:

    python benchmarks/synthetic_mask_probe.py --run runs/mmlatch [--n-test 300]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import mmlatch
from mmlatch.data.synthetic import GROUPS, make_synthetic, text_flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = mmlatch.load_run(args.run)
    data_args = dict(run.config.data_args or {})
    data = make_synthetic(**data_args)
    test = data.split("test")
    feats = {k: torch.from_numpy(v) for k, v in test.features.items()}
    lens = {k: torch.from_numpy(v) for k, v in test.lengths.items()}
    valid = np.arange(test.features["text"].shape[1])[None, :] < test.lengths["text"][:, None]
    flag = text_flags(test)[valid]  # up to a global sign
    model = run.model.eval()
    if not hasattr(model, "masks"):
        raise SystemExit(f"{args.run}: model {type(model).__name__} has no top-down masks")
    with torch.no_grad():
        masks = model.masks(feats, lens)
        reps = model.backbone.encode(feats, lens)
    for mod, (group_a, _) in GROUPS.items():
        if data.feature_names[mod][group_a.start] != "A0":
            continue  # this modality shows the flag instead of expressing the sentiment
        m = masks[mod].numpy()[valid][:, group_a].mean(1)
        print(f"{mod:6s} A-mask vs flag: |corr| {abs(np.corrcoef(m, flag)[0, 1]):.3f}, "
              f"mask range {masks[mod].numpy()[valid].min():.3f}-{masks[mod].numpy()[valid].max():.3f}")
    half = valid.sum() // 2
    for mod, r in reps.items():
        x = np.c_[r.numpy()[valid], np.ones(valid.sum())]
        w = np.linalg.lstsq(x[:half], flag[:half], rcond=None)[0]
        print(f"probe of the flag from r_{mod}: held-out accuracy {(np.sign(x[half:] @ w) == flag[half:]).mean():.3f}")


if __name__ == "__main__":
    main()
