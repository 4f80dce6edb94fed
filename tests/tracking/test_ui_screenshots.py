"""What a user sees in the MLflow UI (issue 19.6): a real ``mlflow server`` on loopback, a sweep
logged into it, and headless Chromium on the runs page and the parent run page. Arm names and the
summary must be visible in the rendered page, not only present in the store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from smo_impact.config import validate
from smo_impact.runner.experiment import run_experiment
from smo_impact.tracking.mlflow_tracker import MlflowTracker, ui_url
from tests.conftest import make_text_dataset
from tests.tracking.browser import Browser, chromium
from tests.tracking.test_remote_server import server  # noqa: F401 - the loopback server fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium() is None, reason="Debian's chromium package is not installed (apt-get install chromium)"),
]
EXPANDER = "button[data-component-id*='runnamecellrenderer']"  # the +/- before a parent run's name


def _keep(shot: Path) -> None:
    """Copy a screenshot where a person can look at it ($SMO_IMPACT_SCREENSHOT_DIR), if asked."""
    if folder := os.environ.get("SMO_IMPACT_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def _is_png(path: Path, width: int, height: int) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        shades = sum(1 for count in image.convert("L").histogram() if count)  # a blank page has one or two
        return image.size == (width, height) and shades > 20


def test_runs_page_and_parent_run_page_show_arms_and_the_summary(server, tmp_path):  # noqa: F811
    config = validate({
        "name": "ui-check", "description": "Does label noise hurt?", "dataset": {"name": "md-agreement"},
        "arms": {"control": ["aggregate"], "label_noise": ["aggregate", {"noise": {"rate": 0.1}}]},
        "sweep": {"label_noise": {"noise.rate": [0.1, 0.3]}}, "seeds": [0, 1],
        "model": {"name": "tfidf_logreg", "params": {"min_df": 1}}, "evaluation": {"bootstrap": 50},
    })
    tracker = MlflowTracker(server, "ui-check")
    result = run_experiment(config, lambda: tracker, dataset=make_text_dataset(300))
    children = sorted(result.runs["run_name"])
    with Browser(tmp_path / "profile", width=1280, height=900) as page:
        # The runs table, at the link `smo-impact run` prints; the parent run expanded.
        page.open(ui_url(server, tracker.experiment_id))
        page.wait_for(f"document.body.innerText.includes('ui-check') && document.querySelector(\"{EXPANDER}\")")
        page.evaluate(f"document.querySelector(\"{EXPANDER}\").click()")
        page.wait_for(" && ".join(f"document.body.innerText.includes('{name}')" for name in children))
        _keep(page.screenshot(tmp_path / "runs_page.png"))
        assert _is_png(tmp_path / "runs_page.png", 1280, 900)
        # Each child's arm is readable in its Run Name cell, not cut off by the column.
        cut = page.evaluate("""(() => {
            const ctx = document.createElement('canvas').getContext('2d');
            return [...document.querySelectorAll("a[href*='/runs/'] span")].map(span => {
                ctx.font = getComputedStyle(span).font;
                const cell = span.closest('.ag-cell');
                const arm = span.textContent.split(' ')[0];
                return [span.textContent, ctx.measureText(arm).width <= span.getBoundingClientRect().width + 1
                        && span.getBoundingClientRect().left + ctx.measureText(arm).width <= cell.getBoundingClientRect().right];
            });
        })()""")
        readable = {name: ok for name, ok in cut}
        assert all(readable[name] for name in children), readable

        # The parent run page opens on its description: the takeaway, the question, the summary table.
        page.open(ui_url(server, tracker.experiment_id, result.parent_run_id))
        page.wait_for("document.body.innerText.includes('Description')")
        page.wait_for(f"document.body.innerText.includes({result.takeaway[:40]!r})")
        text = page.text()
        assert result.takeaway in text and "Does label noise hurt?" in text
        _keep(page.screenshot(tmp_path / "parent_run_page.png"))
        assert _is_png(tmp_path / "parent_run_page.png", 1280, 900)
        # The summary table sits behind the description's "Show more".
        page.evaluate("[...document.querySelectorAll('button, a, span')].find(e => e.textContent.trim() === 'Show more').click()")
        page.wait_for("document.body.innerText.includes('noise.rate=0.3')")
        rows = page.evaluate("[...document.querySelectorAll('table tr')].map(tr => tr.innerText)")
        assert any(row.startswith("arm\tgrid\tn\tmacro-F1") for row in rows), rows[:5]
        assert any(row.startswith("label_noise\tnoise.rate=0.3\t2\t") for row in rows)
        _keep(page.screenshot(tmp_path / "parent_run_description.png"))
