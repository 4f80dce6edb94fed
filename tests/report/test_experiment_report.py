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

SECTIONS = ("Takeaway", "Question", "Arms", "Summary", "Dose-response", "Quality vs outcome", "Gates", "Top regressions",
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
    assert _coloured_share(bare.resolve().as_uri(), tmp_path) < 0.0005  # the takeaway's and the note's borders


def _coloured_share(url: str, tmp) -> float:
    from PIL import Image

    shot = tmp / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2400", url, tmp=tmp / "profile")
    with Image.open(shot) as page:
        pixels = np.asarray(page.convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2400, 1200)
    return float(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).mean())


def test_report_opens_with_a_title_and_the_takeaway_in_words(written):
    paths, _, _ = written
    text = paths["markdown"].read_text()
    assert text.startswith("# Does label noise hurt recall?\n\n_Experiment toy-report, 8 runs, parent run ")
    # The takeaway comes first, from the stored fit: macro-F1 = 0.8 - 0.5 * rate, so -5 points per +0.1.
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "Takeaway"
    assert re.search(r"## Takeaway\n\nEach \+0\.1 of rate \(noise\) costs 5\.0 points of macro-F1 \(95% CI \d\.\d to \d\.\d, R² 0\.\d\d\)\.\n", text)


def test_tables_have_human_headers_and_texts_come_after_a_content_note(written):
    paths, _, _ = written
    text = paths["markdown"].read_text()
    assert "| arm | grid | n | macro-F1 (test) |" in text
    assert "| outcome | against | arm | slope | slope 95% CI low | slope 95% CI high | R² | p-value | n |" in text
    lines = text.splitlines()
    headers = [lines[i - 1] for i, line in enumerate(lines) if line.startswith("|---")]
    assert not [h for h in headers if "regression/" in h or "delta/" in h or "treatment/" in h]
    note = text.index("Content note: the texts below are quoted as written")
    assert note < text.index("regressed item 3")
    page = paths["html"].read_text()
    assert page.index('<p class="note" role="note">Content note') < page.index("regressed item 3")
    assert '<td class="txt">regressed item' in page  # texts are left-aligned and wrap; numbers right


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium package is not installed (apt-get install chromium)")
def test_report_fits_a_1280_px_window(written, tmp_path):
    paths, _, _ = written
    # The page measures itself once laid out in a 1,280 px window and writes the widths into its DOM.
    probe = ("<script>addEventListener('load', () => { const d = document.createElement('div'); d.id = 'probe';"
             "d.textContent = document.documentElement.scrollWidth + ' ' + innerWidth; document.body.append(d); });</script>")
    page = tmp_path / "probe.html"
    page.write_text(paths["html"].read_text().replace("</body>", probe + "</body>"))
    dom = _chromium("--window-size=1280,900", "--virtual-time-budget=3000", "--dump-dom", page.resolve().as_uri(),
                    tmp=tmp_path / "profile").stdout
    scroll, inner = map(int, re.search(r'<div id="probe">(\d+) (\d+)</div>', dom).groups())
    assert inner == 1280 and scroll <= inner
