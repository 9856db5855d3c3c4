"""Export a finished run's model to ONNX or TorchScript, checked against PyTorch.

The exported graph is :class:`ExportWrapper`: inputs are one tensor per modality in the
model's modality order (``model.json``), ``<modality>`` (B, L, F_k) float32 end-padded, then
``lengths`` (B,) int64 real steps (shared by the modalities; with ``per_modality_lengths``
one ``lengths_<modality>`` per modality instead, for models that take unaligned input);
the output is ``prediction`` (B, num_outputs). Batch size and sequence length are dynamic
(one ``length`` axis shared by the modalities, or one per modality with
``per_modality_lengths``).

How: TorchScript by :func:`torch.jit.trace`; ONNX by the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``, opset 17), which handles the models' 3-D
``scaled_dot_product_attention`` (the dynamo exporter supports only 4-D inputs to it). The
models' input checks read tensor values into Python, which a trace cannot record; they are
skipped while tracing or exporting (:func:`mmlatch.modules.checks.is_exporting`), so the
exported model does not validate its inputs: lengths must lie in [1, L].

Every export is verified by default: the exported model (loaded back: ``torch.jit.load`` /
onnxruntime) and the PyTorch model are run on two random batches of different batch size
and length, each with samples of different lengths, and must agree within ``atol``
(default 1e-5). ONNX verification needs onnxruntime (``pip install mmlatch[export]``); without
it the export is written and the check reported as skipped. A JSON description of inputs and
outputs is written beside the file (``FILE.json``).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmlatch.analysis.collect import AnalysisError
from mmlatch.files import write_bytes, write_json
from mmlatch.training.run import load_run_model

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
OPSET = 17
#: (batch size, padded length) of the two verification batches
CHECK_SHAPES: tuple[tuple[int, int], ...] = ((3, 7), (5, 12))


class ExportWrapper(nn.Module):
    """``(x_1, ..., x_n, lengths) -> prediction`` around a model taking a modality dict.

    Args:
        model: a model ``(features: dict, lengths) -> ModelOutput`` (eval mode).
        modalities: the model's modality order (the order of the positional inputs).
        per_modality_lengths: take one lengths tensor per modality after the features
            instead of one shared ``lengths``.
    """

    def __init__(self, model: nn.Module, modalities: list[str], per_modality_lengths: bool = False) -> None:
        super().__init__()
        self.model = model
        self.modalities = list(modalities)
        self.per_modality_lengths = per_modality_lengths

    def forward(self, *inputs: Tensor) -> Tensor:
        """``x_1 .. x_n`` (B, L, F_k), then lengths (B,) (or n of them) -> (B, num_outputs)."""
        n = len(self.modalities)
        features = dict(zip(self.modalities, inputs[:n]))
        lengths: Tensor | dict[str, Tensor]
        lengths = dict(zip(self.modalities, inputs[n:])) if self.per_modality_lengths else inputs[n]
        return self.model(features, lengths).prediction

    def input_names(self) -> list[str]:
        lengths = [f"lengths_{m}" for m in self.modalities] if self.per_modality_lengths else ["lengths"]
        return [*self.modalities, *lengths]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes: dict[str, dict[int, str]] = {}
        for m in self.modalities:
            axes[m] = {0: "batch", 1: f"length_{m}" if self.per_modality_lengths else "length"}
        for name in self.input_names()[len(self.modalities):]:
            axes[name] = {0: "batch"}
        axes["prediction"] = {0: "batch"}
        return axes


def example_inputs(
    modality_dims: dict[str, int], batch: int, length: int, per_modality_lengths: bool, seed: int = 0
) -> tuple[Tensor, ...]:
    """Random end-padded inputs; sample 0 uses every step, the others random lengths in [1, L].

    With ``per_modality_lengths`` the i-th modality has ``length + i`` steps and its own
    lengths (unaligned input); otherwise all share ``length`` and one lengths tensor.
    """
    g = torch.Generator().manual_seed(seed)
    feats, lens = [], []
    for i, f in enumerate(modality_dims.values()):
        steps_k = length + i if per_modality_lengths else length
        if per_modality_lengths or not lens:
            lengths = torch.randint(1, steps_k + 1, (batch,), generator=g)
            lengths[0] = steps_k
            lens.append(lengths)
        real = torch.arange(steps_k).unsqueeze(0) < lens[-1].unsqueeze(1)  # (B, L_k)
        feats.append(torch.randn(batch, steps_k, f, generator=g) * real.unsqueeze(2))
    return (*feats, *lens)


def _trace(wrapper: ExportWrapper, args: tuple[Tensor, ...]) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # shape-derived Python values are traced as constants only where they are constant
        # for a given model (e.g. HCT-MG's fusion order from its gate buffer); verified below
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(wrapper, args, check_trace=False)


def _export_onnx(wrapper: ExportWrapper, args: tuple[Tensor, ...], opset: int) -> bytes:
    if importlib.util.find_spec("onnx") is None:
        raise AnalysisError("ONNX export needs the onnx package: pip install 'mmlatch[export]'")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings and the legacy exporter's notice
        torch.onnx.export(
            wrapper,
            args,
            buffer,
            input_names=wrapper.input_names(),
            output_names=["prediction"],
            dynamic_axes=wrapper.dynamic_axes(),
            opset_version=opset,
            dynamo=False,
        )
    return buffer.getvalue()


def onnx_session(model: bytes | str | Path) -> Any:
    """An onnxruntime CPU session; ImportError with the install hint when it is missing."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("onnxruntime is not installed: pip install 'mmlatch[export]'") from e
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, names: list[str], inputs: tuple[Tensor, ...]) -> np.ndarray:
    """Run an ONNX session on positional inputs (names unused by the graph are dropped)."""
    wanted = {i.name for i in session.get_inputs()}
    feed = {n: t.numpy() for n, t in zip(names, inputs) if n in wanted}
    return session.run(["prediction"], feed)[0]


def export_model(
    model: nn.Module,
    modality_dims: dict[str, int],
    fmt: str,
    out: str | Path,
    per_modality_lengths: bool = False,
    verify: bool = True,
    atol: float = 1e-5,
    opset: int = OPSET,
) -> dict[str, Any]:
    """Export ``model`` to ``out`` and (by default) verify it (module docstring).

    Returns:
        A description: format, file, inputs, outputs, and ``max_abs_diff`` per checked
        (batch, length) or ``verified: "skipped ..."``.
    Raises:
        AnalysisError: unknown format, or the exported model disagrees with PyTorch.
    """
    if fmt not in FORMATS:
        raise AnalysisError(f"unknown export format {fmt!r}; choose from {list(FORMATS)}")
    model = model.eval().cpu()
    from mmlatch.modules.pretrained_text import reads_text

    if reads_text(model):
        raise AnalysisError("this model tokenises each sample's raw text inside its forward pass "
                            "(text_encoder 'finetune'): it cannot be exported; a run with text_encoder "
                            "'frozen' or 'lstm' can")
    wrapper = ExportWrapper(model, list(modality_dims), per_modality_lengths).eval()
    args = example_inputs(modality_dims, 2, 6, per_modality_lengths, seed=0)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        try:  # an eager run first: the model's input checks still run (e.g. alignment)
            wrapper(*args)
        except ValueError as e:
            raise AnalysisError(f"the model does not accept the export's inputs: {e}") from e
        if fmt == "torchscript":
            traced = _trace(wrapper, args)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            write_bytes(path, buffer.getvalue())
        else:
            write_bytes(path, _export_onnx(wrapper, args, opset))
    info: dict[str, Any] = {
        "format": fmt,
        "file": str(path),
        "inputs": [
            *({"name": m, "shape": ["batch", f"length_{m}" if per_modality_lengths else "length", f], "dtype": "float32"}
              for m, f in modality_dims.items()),
            *({"name": n, "shape": ["batch"], "dtype": "int64"} for n in wrapper.input_names()[len(modality_dims):]),
        ],
        "outputs": [{"name": "prediction", "shape": ["batch", "num_outputs"], "dtype": "float32"}],
        "atol": atol,
    }
    if verify:
        info.update(verify_export(wrapper, path, fmt, modality_dims, per_modality_lengths, atol))
    return info


def verify_export(
    wrapper: ExportWrapper,
    path: Path,
    fmt: str,
    modality_dims: dict[str, int],
    per_modality_lengths: bool,
    atol: float,
) -> dict[str, Any]:
    """Compare the exported file with ``wrapper`` on :data:`CHECK_SHAPES` batches."""
    if fmt == "torchscript":
        loaded = torch.jit.load(str(path))

        def run(inputs: tuple[Tensor, ...]) -> np.ndarray:
            return loaded(*inputs).numpy()
    else:
        try:
            session = onnx_session(path)
        except ImportError as e:
            return {"verified": f"skipped: {e}"}

        def run(inputs: tuple[Tensor, ...]) -> np.ndarray:
            return run_onnx(session, wrapper.input_names(), inputs)

    diffs = {}
    with torch.no_grad():
        for i, (batch, length) in enumerate(CHECK_SHAPES):
            inputs = example_inputs(modality_dims, batch, length, per_modality_lengths, seed=i + 1)
            expected = wrapper(*inputs).numpy()
            diff = float(np.abs(run(inputs) - expected).max())
            diffs[f"{batch}x{length}"] = diff
            if not diff <= atol:
                raise AnalysisError(
                    f"the exported {fmt} model differs from PyTorch by {diff:.3g} (> {atol}) on a "
                    f"batch of {batch} x {length} steps"
                )
    return {"verified": True, "max_abs_diff": diffs}


def export_run(
    run_dir: str | Path,
    fmt: str,
    out: str | Path,
    per_modality_lengths: bool = False,
    verify: bool = True,
    atol: float = 1e-5,
    opset: int = OPSET,
) -> dict[str, Any]:
    """Export a finished run's best model; writes ``out`` and ``out`` + ``.json``.

    Returns:
        The description written to the JSON file (see :func:`export_model`), plus the run's
        model name, modality dims and task.
    """
    model, spec, _ = load_run_model(run_dir)
    dims = {k: int(v) for k, v in spec["modality_dims"].items()}
    info = export_model(model, dims, fmt, out, per_modality_lengths, verify, atol, opset)
    info = {"run": str(run_dir), "model": spec["model"], "modality_dims": dims, "task": spec["task"], **info}
    write_json(Path(str(out) + ".json"), info)
    return info


__all__ = ["CHECK_SHAPES", "ExportWrapper", "FORMATS", "example_inputs", "export_model", "export_run", "onnx_session", "run_onnx", "verify_export"]


#: inference engines of ``mmlatch predict --engine``
ENGINES = ("torch", "onnx", "onnx-int8")


class OnnxEngine:
    """A run's model exported to ONNX and run by onnxruntime's CPU provider: predictions only
    (no masks or extras). ``int8``: onnxruntime's dynamic quantisation (weights int8,
    activations quantised per batch). Measured faster than PyTorch on CPU, float32 and int8
    alike (benchmarks/onnx_inference.py, docs/guide/speed.md).

    Args:
        model: the model (eval mode).
        modalities: its modality order.
        per_modality_lengths: one lengths input per modality (unaligned data).
        int8: quantise the graph.
        threads: onnxruntime's intra-op threads (default: torch's).
    """

    def __init__(
        self, model: nn.Module, modality_dims: dict[str, int], per_modality_lengths: bool, int8: bool = False,
        threads: int | None = None,
    ) -> None:
        import tempfile

        try:
            import onnxruntime as ort
        except ImportError as e:
            raise AnalysisError("the onnx engine needs onnxruntime: pip install 'mmlatch[export]'") from e
        self.modalities = list(modality_dims)
        self.precision = "onnx-int8" if int8 else "onnx-32"
        self.wrapper = ExportWrapper(model.eval().cpu(), self.modalities, per_modality_lengths).eval()
        args = example_inputs(modality_dims, 2, 6, per_modality_lengths, seed=0)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            path.write_bytes(_export_onnx(self.wrapper, args, OPSET))
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantized = Path(tmp) / "model.int8.onnx"
                logging.disable(logging.WARNING)  # its advice to pre-process the graph
                try:
                    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
                finally:
                    logging.disable(logging.NOTSET)
                path = quantized
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> np.ndarray:
        """(B, num_outputs) predictions of one batch (features (B, L_k, F_k), lengths (B,))."""
        names = self.wrapper.input_names()
        values = [features[m] for m in self.modalities]
        values += [lengths[m] for m in self.modalities] if self.wrapper.per_modality_lengths else [lengths[self.modalities[0]]]
        feed = {n: v.cpu().numpy() for n, v in zip(names, values) if n in self.inputs}
        return self.session.run(["prediction"], feed)[0]
