"""Step parity of training (issue 22): the released MMLatch model vs our ``authors`` variant.

Both start from the same weights (the released model's random init, brought over with
:func:`mmlatch.models.authors.from_authors_state`), see the same batches in the same order
(cut to each batch's longest sample, end-padded, real lengths given), dropout off, Adam
lr 5e-4, L1 loss; after each step the losses and every weight are compared. ``--batches equal``
draws batches of equal-length samples (no padding), ``padded`` random batches. Our model
keeps the released code's padded steps (the ``authors`` variant's default); ``--set
padding=\\"masked\\"`` makes its padding inert.

The released code is not part of this project: give the root of a checkout of
github georgepar/mmlatch with ``--authors-code``; without it the benchmark says so and exits 0.
Its package is copied to a temporary directory under another name (ours is also ``mmlatch``).

    python benchmarks/planted_data.py --out /tmp/planted/mosei_senti_data.pkl
    python benchmarks/training_parity.py --authors-code /path/to/mmlatch-checkout \\
        --data /tmp/planted/mosei_senti_data.pkl --steps 100 --batches padded
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from parity_common import batch_tensors, step_batches
from torch import nn

from mmlatch.data.loading import load_dataset
from mmlatch.models import create_model
from mmlatch.models.authors import from_authors_state, to_authors_state


def import_released(root: Path) -> types.ModuleType:
    """The released ``mmlatch/mm.py`` as module ``authors_mmlatch.mm`` (copied to a temp dir)."""
    src = root / "mmlatch"
    if not (src / "mm.py").is_file():
        raise SystemExit(f"--authors-code {root}: no mmlatch/mm.py there (give the root of a checkout of georgepar/mmlatch)")
    tmp = Path(tempfile.mkdtemp(prefix="authors_mmlatch_"))
    dst = tmp / "authors_mmlatch"
    dst.mkdir()
    for f in src.glob("*.py"):
        text = re.sub(r"\bfrom mmlatch\.", "from authors_mmlatch.", f.read_text())
        (dst / f.name).write_text(re.sub(r"\bimport mmlatch\.", "import authors_mmlatch.", text))
    if "validators" not in sys.modules:  # util.py imports it for type hints only
        stub = types.ModuleType("validators")
        stub.ValidationFailure = object  # type: ignore[attr-defined]
        sys.modules["validators"] = stub
    sys.path.insert(0, str(tmp))
    return importlib.import_module("authors_mmlatch.mm")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors-code", default=None, help="root of a checkout of github georgepar/mmlatch")
    p.add_argument("--data", required=False, default=None, help="a MulT pickle (benchmarks/planted_data.py)")
    p.add_argument("--model", default="baseline", choices=["baseline", "mmlatch"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batches", default="padded", choices=["equal", "padded"])
    p.add_argument("--set", nargs="*", default=[], help="our model options, key=JSON value")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-every", type=int, default=25)
    p.add_argument("--double", action="store_true", help="both models in float64 (rounding vs a real difference)")
    a = p.parse_args()
    if not a.authors_code:
        print("training_parity: skipped (no --authors-code; the released code is not part of this project)")
        return
    if not a.data:
        raise SystemExit("--data: a MulT pickle is needed (python benchmarks/planted_data.py --out ...)")
    amm = import_released(Path(a.authors_code))
    torch.manual_seed(a.seed)
    tr = load_dataset(a.data).split("train")
    dims = {m: int(x.shape[-1]) for m, x in tr.features.items()}
    fb = a.model == "mmlatch"
    theirs = amm.AVTClassifier(dims["text"], dims["audio"], dims["visual"], 100, bidirectional=True, dropout=0.0,
                               encoder_type="lstm", attention=True, feedback=fb, device="cpu", num_classes=1)
    for mod in theirs.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    if fb:  # the released mask dropout, F.dropout(mask, p=0.2), is always on: switched off
        amm.F = types.SimpleNamespace(dropout=lambda x, p=0.0: x)
    kw = dict(variant="authors", dropout=0.0, attn_dropout=0.0)
    kw.update({k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)})
    if fb:
        kw.update(mask_dropout=0.0, feedback_dropout=0.0)
    ours = create_model(a.model, dims, **kw)
    ours.load_state_dict(from_authors_state(theirs.state_dict(), a.model, ours.state_dict()))
    dtype = torch.float64 if a.double else torch.float32
    theirs.to(dtype)
    ours.to(dtype)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=5e-4)
    opt_o = torch.optim.Adam(ours.parameters(), lr=5e-4)
    theirs.train()
    ours.train()
    lens = tr.lengths["text"]
    rng = np.random.default_rng(a.seed)

    worst = 0.0
    it = step_batches(lens, 32, a.batches, rng)
    for step in range(1, a.steps + 1):
        idx = np.array(next(it))
        ln, x, y = batch_tensors(tr, idx, dims, dtype)
        loss_t = F.l1_loss(theirs({**x, "lengths": ln}).squeeze(), y.squeeze())
        loss_o = F.l1_loss(ours(x, ln).prediction, y)
        for opt, loss in ((opt_t, loss_t), (opt_o, loss_o)):
            opt.zero_grad()
            loss.backward()
            opt.step()
        worst = max(worst, abs(float(loss_t.detach()) - float(loss_o.detach())))
        if step % a.report_every == 0 or step in (1, a.steps):
            ts, os_ = theirs.state_dict(), to_authors_state(ours.state_dict(), a.model)
            dw = max(float((ts[k] - os_[k]).abs().max()) for k in ts)
            print(json.dumps({"step": step, "loss_theirs": float(loss_t.detach()), "loss_ours": float(loss_o.detach()),
                              "max_loss_diff_so_far": worst, "max_weight_diff": dw}), flush=True)


if __name__ == "__main__":
    main()
