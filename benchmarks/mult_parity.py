"""Step parity of training (issue 22): MulT's public code vs our ``mult``.

Both start from the same weights (the public model's random init, ported tensor by tensor into
ours: ``in_proj_weight`` split into q/k/v, ``layer_norms.0/1`` -> ``norm_q``/``norm_ff``),
see the same batches in the same order, dropout off, the public loop's step (Adam lr 1e-3,
gradient norm clipped to 0.8, L1 loss); after each step the losses and every weight are
compared. Our model runs with the public sizes (d 30, 5 layers, 5 heads), no causal mask and
``kv_norm: shared`` (a crossmodal layer's one LayerNorm normalises both streams, as there).

``--batches equal``: batches of equal-length samples, given to both without padding.
``--batches padded``: random batches as the public loop sees them (every sample front-padded
to the file's 50 steps; its attention has no padding mask and its positions skip the padding)
beside ours (end padding cut to the batch's longest sample, padded keys masked).

MulT's public code is not part of this project: give the root of a checkout of
github yaohungt/Multimodal-Transformer with ``--mult-code``; without it the benchmark says so
and exits 0.

    python benchmarks/planted_data.py --out /tmp/planted/mosei_senti_data.pkl
    python benchmarks/mult_parity.py --mult-code /path/to/Multimodal-Transformer \\
        --data /tmp/planted/mosei_senti_data.pkl --steps 100 --batches equal
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from parity_common import batch_tensors, step_batches
from torch import Tensor, nn

from mmlatch.data.loading import load_dataset
from mmlatch.models import create_model

#: public stack name -> (our target, our source) or (our target, None) for a memory
STACKS = {
    "trans_l_with_a": ("text", "audio"), "trans_l_with_v": ("text", "visual"),
    "trans_a_with_l": ("audio", "text"), "trans_a_with_v": ("audio", "visual"),
    "trans_v_with_l": ("visual", "text"), "trans_v_with_a": ("visual", "audio"),
    "trans_l_mem": ("text", None), "trans_a_mem": ("audio", None), "trans_v_mem": ("visual", None),
}
PROJ = {"proj_l": "text", "proj_a": "audio", "proj_v": "visual"}


def public_to_ours(state: dict[str, Tensor], layers: int, mem_layers: int) -> dict[str, Tensor]:
    """Our ``mult`` (kv_norm shared) state dict from a public ``MULTModel`` one (every tensor)."""
    out: dict[str, Tensor] = {}
    for theirs, m in PROJ.items():
        out[f"projections.{m}.conv.weight"] = state[f"{theirs}.weight"]
    for theirs, (t, s) in STACKS.items():
        ours = f"encoders.{t}.{s}" if s else f"memories.{t}"
        for i in range(mem_layers if s is None else layers):
            a, b = f"{theirs}.layers.{i}", f"{ours}.layers.{i}"
            for p in ("weight", "bias"):
                q, k, v = state[f"{a}.self_attn.in_proj_{p}"].chunk(3)
                out.update({f"{b}.attn.q.{p}": q, f"{b}.attn.k.{p}": k, f"{b}.attn.v.{p}": v})
                out[f"{b}.attn.out.{p}"] = state[f"{a}.self_attn.out_proj.{p}"]
                out[f"{b}.norm_q.{p}"] = state[f"{a}.layer_norms.0.{p}"]
                out[f"{b}.norm_ff.{p}"] = state[f"{a}.layer_norms.1.{p}"]
                out[f"{b}.fc1.{p}"] = state[f"{a}.fc1.{p}"]
                out[f"{b}.fc2.{p}"] = state[f"{a}.fc2.{p}"]
        for p in ("weight", "bias"):
            out[f"{ours}.norm.{p}"] = state[f"{theirs}.layer_norm.{p}"]
    for theirs, ours in (("proj1", "proj1"), ("proj2", "proj2"), ("out_layer", "out")):
        for p in ("weight", "bias"):
            out[f"head.{ours}.{p}"] = state[f"{theirs}.{p}"]
    return {k: v.detach().clone() for k, v in out.items()}


def import_public(root: Path) -> Any:
    """``MULTModel`` from a checkout of the public code (its root goes first on sys.path)."""
    if not (root / "src" / "models.py").is_file() or not (root / "modules" / "transformer.py").is_file():
        raise SystemExit(f"--mult-code {root}: no src/models.py + modules/transformer.py (a Multimodal-Transformer checkout)")
    sys.path.insert(0, str(root))
    import modules.position_embedding as pe  # type: ignore[import-not-found]
    from src.models import MULTModel  # type: ignore[import-not-found]

    # with torch >= 1.x its positions tensor is not contiguous and its `.view(-1)` fails: the
    # same numbers, made contiguous (nothing else of the public code is changed)
    make_positions = pe.make_positions
    pe.make_positions = lambda *args, **kw: make_positions(*args, **kw).contiguous()
    return MULTModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mult-code", default=None, help="root of a checkout of github yaohungt/Multimodal-Transformer")
    p.add_argument("--data", default=None, help="a MulT pickle (benchmarks/planted_data.py)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batches", default="equal", choices=["equal", "padded"])
    p.add_argument("--batch-size", type=int, default=24, help="the public code's default")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--clip", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-every", type=int, default=25)
    p.add_argument("--double", action="store_true", help="both models in float64 (the public attention's softmax stays float32)")
    p.add_argument(
        "--control", action="store_true",
        help="instead of ours, the public model itself with every initial weight moved by one float32 ulp: how far "
        "float32 rounding alone carries two runs of the same code apart",
    )
    a = p.parse_args()
    if not a.mult_code:
        print("mult_parity: skipped (no --mult-code; MulT's public code is not part of this project)")
        return
    if not a.data:
        raise SystemExit("--data: a MulT pickle is needed (python benchmarks/planted_data.py --out ...)")
    MULTModel = import_public(Path(a.mult_code))
    torch.manual_seed(a.seed)
    tr = load_dataset(a.data).split("train")
    dims = {m: int(x.shape[-1]) for m, x in tr.features.items()}
    full_len = int(tr.features["text"].shape[1])
    hp = SimpleNamespace(
        orig_d_l=dims["text"], orig_d_a=dims["audio"], orig_d_v=dims["visual"], vonly=True, aonly=True, lonly=True,
        num_heads=5, layers=5, attn_dropout=0.0, attn_dropout_a=0.0, attn_dropout_v=0.0, relu_dropout=0.0,
        res_dropout=0.0, out_dropout=0.0, embed_dropout=0.0, attn_mask=False, output_dim=1,
    )
    theirs = MULTModel(hp)
    ours = create_model(
        "mult", dims, hidden=30, layers=5, heads=5, embed_dropout=0.0, attn_dropout=0.0, relu_dropout=0.0,
        res_dropout=0.0, out_dropout=0.0, causal=False, kv_norm="shared",
    )
    ported = public_to_ours(theirs.state_dict(), 5, 5)
    missing = sorted(set(ours.state_dict()) ^ set(ported))
    if missing:
        raise SystemExit(f"weight map incomplete: {missing}")
    ours.load_state_dict(ported)
    if a.control:  # the same public code, weights nudged by one ulp, compared the same way
        twin = copy.deepcopy(theirs)
        with torch.no_grad():
            for w in twin.parameters():
                w.copy_(torch.nextafter(w, torch.full_like(w, math.inf)))

        class Twin(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = twin

            def forward(self, x: dict[str, Tensor], lengths: Tensor) -> SimpleNamespace:
                return SimpleNamespace(prediction=self.net(x["text"], x["audio"], x["visual"])[0])

            def state_dict(self, *args: Any, **kw: Any) -> dict[str, Tensor]:  # type: ignore[override]
                return public_to_ours(self.net.state_dict(), 5, 5)

        ours = Twin()
    dtype = torch.float64 if a.double else torch.float32
    theirs.to(dtype)
    ours.to(dtype)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=a.lr)
    opt_o = torch.optim.Adam(ours.parameters(), lr=a.lr)
    theirs.train()
    ours.train()
    lens = tr.lengths["text"]
    rng = np.random.default_rng(a.seed)

    def front_padded(x: Tensor, ln: Tensor, length: int) -> Tensor:
        """(B, L, F) end-padded -> (B, length, F) with the real steps at the end."""
        out = x.new_zeros(x.size(0), length, x.size(2))
        for b, n in enumerate(ln.tolist()):
            out[b, length - n:] = x[b, :n]
        return out

    worst = 0.0
    it = step_batches(lens, a.batch_size, a.batches, rng)
    for step in range(1, a.steps + 1):
        idx = np.array(next(it))
        ln, x, y = batch_tensors(tr, idx, dims, dtype)
        y = y.view(-1, 1)
        xt = x if a.batches == "equal" else {m: front_padded(v, ln, full_len) for m, v in x.items()}
        loss_t = F.l1_loss(theirs(xt["text"], xt["audio"], xt["visual"])[0], y)
        loss_o = F.l1_loss(ours(xt if a.control else x, ln).prediction, y)
        for model, opt, loss in ((theirs, opt_t, loss_t), (ours, opt_o, loss_o)):
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
        worst = max(worst, abs(float(loss_t.detach()) - float(loss_o.detach())))
        if step % a.report_every == 0 or step in (1, a.steps):
            mine = ours.state_dict()
            ts = public_to_ours(theirs.state_dict(), 5, 5)
            dw = max(float((ts[k] - mine[k]).abs().max()) for k in ts)
            print(json.dumps({"step": step, "loss_theirs": float(loss_t.detach()), "loss_ours": float(loss_o.detach()),
                              "max_loss_diff_so_far": worst, "max_weight_diff": dw}), flush=True)


if __name__ == "__main__":
    main()
