"""The experiment report: built from the store, rendered in headless Chromium, logged on the parent run."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from mlflow import MlflowClient

from smo_impact.report.experiment_report import report_experiment

SECTIONS = ("Question", "Arms", "Summary", "Dose-response", "Quality vs outcome", "Gates", "Top regressions",
            "Root-cause attribution", "Provenance", "Resolved config")


@pytest.fixture(scope="module")
def written(stored, tmp_path_factory):
    uri, _, _ = stored
    out = tmp_path_factory.mktemp("report")
    paths, parent = report_experiment("toy-report", out, uri)
    return paths, parent, uri


def test_markdown_twin_has_every_section_and_the_figures(written):
    paths, _, _ = written
    text = paths["markdown"].read_text()
    for title in SECTIONS:
        assert f"## {title}\n" in text
    assert "Does label noise hurt recall?" in text
    # summary: mean [95% t-interval] over the two seeds; 0.71 / 0.69 -> 0.700 +- 12.706 * 0.01
    assert "| noise | noise.rate=0.2 | 2 | 0.700 [0.573, 0.827] |" in text
    assert "| test/macro_f1 | noise.rate | noise | -0.5 |" in text
    assert "regressed item 3" in text  # top regressions carry the item texts
    assert "| noise rate=0.4 s0 | domain | covid | 30 | 0.15 | 0.75 | 1 | tfidf_logreg |" in text
    assert "d1g3st" in text and "deadbeef" in text  # provenance tags
    for image in re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text):
        assert (paths["markdown"].parent / image).stat().st_size > 1000
    assert "figures/impact_vs_noise.rate.png" in text


def test_report_is_logged_on_the_parent_run(written):
    _, parent, uri = written
    logged = {a.path for a in MlflowClient(uri).list_artifacts(parent, "report")}
    assert {"report/report.html", "report/report.md", "report/figures"} <= logged


def _chromium(*args: str, tmp) -> subprocess.CompletedProcess:
    command = [
        shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium package is not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium_with_loaded_figures(written, tmp_path):
    from PIL import Image

    paths, _, _ = written
    url = paths["html"].resolve().as_uri()
    dom = _chromium("--dump-dom", url, tmp=tmp_path / "profile").stdout
    for title in SECTIONS:
        assert re.search(rf"<h2>{re.escape(title)}</h2>", dom)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', dom)
    assert {"impact_vs_noise.rate", "impact_vs_quality_label_noise"} <= {name for name, _ in images}
    for _, data in images:  # every embedded figure decodes as a real plot
        with Image.open(io.BytesIO(base64.b64decode(data))) as png:
            assert png.size[0] >= 300 and png.size[1] >= 200
            assert len(np.unique(np.asarray(png.convert("L")))) > 20
    # The page's pixels in colour (plot lines and markers) vs the same page with the figures removed.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', paths["html"].read_text()))
    assert _coloured_share(url, tmp_path) > 0.001
    assert _coloured_share(bare.resolve().as_uri(), tmp_path) < 0.0001


def _coloured_share(url: str, tmp) -> float:
    from PIL import Image

    shot = tmp / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2400", url, tmp=tmp / "profile")
    with Image.open(shot) as page:
        pixels = np.asarray(page.convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2400, 1200)
    return float(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).mean())
