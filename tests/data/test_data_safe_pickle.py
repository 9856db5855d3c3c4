"""The restricted unpickler: numpy arrays and plain containers load; anything else is refused."""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.readers import read_path
from mmlatch.data.safe_pickle import safe_load_pickle


class _CallOnLoad:
    """Pickles as ``fn(*args)``: what a malicious file does."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_and_containers_load(tmp_path: Path, protocol: int) -> None:
    obj = {
        "train": {
            "audio": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            "id": np.array([[b"vid", b"0", b"1"]]),
            "names": np.array(["a$_$1", "b$_$2"], dtype=object),
            "u": np.array(["x"]),
            "scalar": np.float64(2.5),
            "n": np.int64(7),
            "misc": [1, 2.0, "s", b"b", None, True, (1, 2), {3, 4}, frozenset({5})],
        }
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = safe_load_pickle(path)
    np.testing.assert_array_equal(out["train"]["audio"], obj["train"]["audio"])
    assert out["train"]["audio"].dtype == np.float32
    assert list(out["train"]["names"]) == ["a$_$1", "b$_$2"]
    assert out["train"]["scalar"] == 2.5 and out["train"]["n"] == 7
    assert out["train"]["misc"] == obj["train"]["misc"]
    assert out["train"]["id"][0, 0] == b"vid"


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    # sanity: the payload really creates a file under a plain unpickler
    proof = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(_CallOnLoad(builtins.open, str(proof), "w"))).close()
    assert proof.exists()

    target = tmp_path / "pwned.txt"
    path = tmp_path / "mosi_data.pkl"
    evil = {
        "train": {
            "labels": np.zeros((1, 1, 1)),
            "text": _CallOnLoad(builtins.open, str(target), "w"),
        }
    }
    path.write_bytes(pickle.dumps(evil, protocol=4))
    # open pickles under its defining module, io
    with pytest.raises(
        DataError, match=r"mosi_data.pkl: refused to load the pickle: it references io.open"
    ):
        safe_load_pickle(path)
    with pytest.raises(DataError, match=r"io.open"):
        read_path(path)
    assert not target.exists()


def test_hand_written_builtins_open_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil0.pkl"
    # protocol 0 by hand: GLOBAL builtins.open, args (target, "w"), REDUCE
    path.write_bytes(b"cbuiltins\nopen\n(V" + str(target).encode() + b"\nVw\ntR.")
    with pytest.raises(DataError, match=r"evil0.pkl: refused .* references builtins.open"):
        safe_load_pickle(path)
    assert not target.exists()
    pickle.loads(path.read_bytes()).close()  # sanity: the bytes are a working payload
    assert target.exists()


def test_os_system_payload_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned2.txt"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_CallOnLoad(os.system, f"touch {target}"), protocol=2))
    with pytest.raises(DataError, match=r"evil.pkl: refused .* references (posix|nt|os)\.system"):
        safe_load_pickle(path)
    assert not target.exists()


def test_other_globals_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(_CallOnLoad(np.load, "whatever.npy"), protocol=4))
    with pytest.raises(DataError, match=r"references numpy.*load"):
        safe_load_pickle(path)


def test_corrupt_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"\x80\x04this is not a pickle")
    with pytest.raises(DataError, match=r"junk.pkl: (not a valid pickle|truncated)"):
        safe_load_pickle(path)
    with pytest.raises(DataError, match=r"nope.pkl: cannot open pickle"):
        safe_load_pickle(tmp_path / "nope.pkl")
