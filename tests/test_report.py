"""`mmlatch report`: the page's numbers equal metrics.json / results.csv (read with a real HTML
parser), it is self-contained (figures embedded, nothing fetched), and headless Chromium
renders it with its figures and no console errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.training.experiment import load_experiment, run_experiment
from tiny import tiny_settings

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_settings(n_train=32, max_len=8)
HCTMG_TINY = ["model_args.encoder_layers=1", "model_args.fusion_layers=1"]


class Page(HTMLParser):
    """Collects the page's metric cells, images, sections, scripts and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.sections: list[str] = []
        self.external: list[str] = []
        self.scripts = 0
        self._cell: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "metric" in a.get("class", "").split():
            self._cell = {**a, "text": ""}
        if tag == "img":
            self.images.append(a)
        if tag == "section":
            self.sections.append(a["id"])
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in a and not a[key].startswith("data:"):
                self.external.append(a[key])

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def _parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def _png_size(uri: str) -> tuple[int, int]:
    assert uri.startswith("data:image/png;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mmlatch (top-down: masks) and hctmg (gate), 1 seed each, 2 epochs, tiny."""
    d = tmp_path_factory.mktemp("report")
    exp_file = d / "exp.yaml"
    exp_file.write_text(yaml.safe_dump({
        "name": "tiny", "config": str(ROOT / "src" / "mmlatch" / "configs" / "synthetic.yaml"),
        "seeds": [0], "set": TINY,
        "runs": [{"name": "mmlatch", "model": "mmlatch"}, {"name": "hctmg", "model": "hctmg", "set": HCTMG_TINY}],
    }))
    run_experiment(load_experiment(exp_file, epochs=2), d / "out", log=lambda _: None)
    return d / "out"


def test_run_report_numbers_equal_metrics_json(experiment: Path) -> None:
    run = experiment / "runs" / "mmlatch" / "seed0"
    res = CliRunner().invoke(app, ["report", "--run", str(run), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    page_file = run / "report.html"
    assert f"report: {page_file}" in res.output
    page = _parse(page_file)
    metrics = json.loads((run / "metrics.json").read_text())
    shown = {(c["data-split"], c["data-metric"]): c for c in page.cells}
    expected = {(s, k): v for s in ("valid", "test") for k, v in metrics[s].items()}
    assert set(shown) == set(expected)
    for key, value in expected.items():
        cell = shown[key]
        if value is None:
            assert cell["data-value"] == "null" and cell["text"] == "null"
        else:
            assert float(cell["data-value"]) == value  # exact
            assert cell["text"] == f"{value:.4f}"
    assert page.sections == ["summary", "metrics", "figures", "settings", "data", "environment"]
    assert page.scripts == 0 and page.external == []  # self-contained, nothing fetched
    kinds = [img["alt"] for img in page.images]
    assert any("learning curves" in k for k in kinds)
    assert any("top-down mask on audio" in k for k in kinds) and any("mask on visual" in k for k in kinds)
    for img in page.images:
        w, h = _png_size(img["src"])
        assert w > 100 and h > 100
    text = page_file.read_text()
    assert "Pearson correlation" in text and "non0 convention" in text  # conventions named
    assert "sha256:" in text and "(16, 8, 74)" in text  # data identity: fingerprint, shapes
    assert json.loads((run / "environment.json").read_text())["python"] in text


def test_the_data_fingerprint_follows_the_content() -> None:
    import mmlatch
    from mmlatch.analysis.report import data_fingerprint

    a = mmlatch.data.load_dataset("synthetic", n_train=8, n_valid=4, n_test=4, min_len=2, max_len=6, seed=0)
    b = mmlatch.data.load_dataset("synthetic", n_train=8, n_valid=4, n_test=4, min_len=2, max_len=6, seed=0)
    assert data_fingerprint(a) == data_fingerprint(b)
    b.splits["test"].features["audio"][0, 0, 0] += 1e-3
    assert data_fingerprint(a) != data_fingerprint(b)


def test_experiment_report_numbers_equal_results_and_show_mask_and_gate(experiment: Path) -> None:
    res = CliRunner().invoke(app, ["report", "--experiment", str(experiment), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    page = _parse(experiment / "report.html")
    results = pd.read_csv(experiment / "results.csv")
    assert len(page.cells) == sum(c.startswith("test_") for c in results.columns) * len(results)
    for cell in page.cells:
        row = results[(results["name"] == cell["data-run"]) & (results["seed"] == int(cell["data-seed"]))].iloc[0]
        value = row[f"test_{cell['data-metric']}"]
        if pd.isna(value):
            assert cell["data-value"] == "null"
        else:
            assert float(cell["data-value"]) == pytest.approx(float(value), rel=1e-12)
    alts = [img["alt"] for img in page.images]
    assert sum("learning curves" in a for a in alts) == 2
    assert any("mmlatch seed 0: average top-down mask" in a for a in alts)
    assert any("hctmg seed 0: mean gate weight" in a for a in alts)
    assert not any("hctmg" in a and "mask" in a for a in alts)  # no masks for a model without them


def test_report_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report"])
    assert res.exit_code == 2 and "give one of --run DIR or --experiment DIR" in res.output
    res = CliRunner().invoke(app, ["report", "--run", str(tmp_path)])
    assert res.exit_code == 2 and "has no model.json" in res.output
    res = CliRunner().invoke(app, ["report", "--experiment", str(tmp_path)])
    assert res.exit_code == 2 and "no finished runs" in res.output and len(res.output.strip().splitlines()) == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")
def test_headless_chromium_renders_the_page_with_figures_and_no_console_errors(experiment: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    run = experiment / "runs" / "mmlatch" / "seed0"
    page_file = run / "report.html"
    if not page_file.is_file():
        assert CliRunner().invoke(app, ["report", "--run", str(run), "--device", "cpu"]).exit_code == 0
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="mmlatch-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1200,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(page_file.resolve().as_uri())
        assert driver.title.startswith("mmlatch run report")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])")
        assert len(images) >= 3
        for complete, width, height, alt in images:
            assert complete and width > 100 and height > 100, alt  # decoded and laid out
        cells = driver.execute_script("return document.querySelectorAll('td.metric').length")
        assert cells == len(_parse(page_file).cells)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        if os.environ.get("MMLATCH_REPORT_SCREENSHOT"):
            driver.save_screenshot(os.environ["MMLATCH_REPORT_SCREENSHOT"])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
