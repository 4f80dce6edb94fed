"""The bad-input corpus (tests/bad_inputs/): every malformed config or data file, run through the
CLI, exits 2 with one clear line on stderr, no traceback, and no MLflow run left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())
EXE = str(Path(sys.executable).parent / "smo-impact")


def test_corpus_is_large_and_complete():
    assert len(CASES) >= 30
    on_disk = {p.name for p in CORPUS.glob("*.yaml")} - {"cases.yaml"}
    assert on_disk == set(CASES), "every corpus file needs an expectation in cases.yaml"


def test_expectations_are_distinctive():
    """A bare key or file name ('worker', 'train') is in almost any message, so it pins nothing."""
    expects = {name: case["expect"] for name, case in CASES.items()}
    short = {name: e for name, e in expects.items() if len(e) < 25}
    assert short == {}, "pin the key, the rule and the fix, not one word"
    shared = [(a, b) for a in expects for b in expects if a != b and expects[a] in expects[b]]
    assert shared == [], "an expectation that also matches another case's message pins neither"


def _run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run the console-script entry point in-process (the interpreter start-up per case would
    cost minutes on 2 cores); `test_one_case_through_the_installed_executable` covers the binary."""
    from smo_impact.cli import main

    monkeypatch.setattr(sys, "argv", ["smo-impact", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def test_one_case_through_the_installed_executable(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    result = subprocess.run([EXE, "run", str(CORPUS / "treatment_typo.yaml")], cwd=CORPUS, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: {CORPUS / 'treatment_typo.yaml'}: arms.n[1]: Unknown treatment 'nosie'. Did you mean 'noise'? "
        "Available: " + ", ".join(sorted(__import__("smo_impact.treatments", fromlist=["TREATMENTS"]).TREATMENTS.names())) + "."
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_clear_line(name, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.chdir(CORPUS)
    corpus_before = sorted(CORPUS.rglob("*"))
    returncode, stdout, stderr = _run_cli([*case["command"].split(), str(CORPUS / name)], monkeypatch, capsys)

    lines = [line for line in stderr.splitlines() if line.strip()]
    assert returncode == 2, f"exit {returncode}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert len(lines) == 1, f"expected one stderr line, got: {lines}"
    assert lines[0].startswith("error: ")
    assert case["expect"] in lines[0], f"{case['expect']!r} not in {lines[0]!r}"
    # A failed run writes nothing next to its config (no stray mlruns/ or cache in the working dir).
    assert sorted(CORPUS.rglob("*")) == corpus_before
    if store.exists():
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{store}")
        running = [
            r.info.run_id
            for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])
            if r.info.status == "RUNNING"
        ]
        assert running == []


def test_included_file_content_is_never_echoed(tmp_path, monkeypatch, capsys):
    """`from: /etc/passwd` says the file is not a mapping; no line of it reaches the terminal."""
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd here")
    config = tmp_path / "c.yaml"
    config.write_text("dataset: {name: md-agreement}\narms: {control: [aggregate]}\nmodel: {from: /etc/passwd}\n")
    for command in ("run", "validate"):
        returncode, stdout, stderr = _run_cli([command, str(config)], monkeypatch, capsys)
        assert returncode == 2 and stderr.strip().splitlines() == [
            "error: /etc/passwd (from: in c.yaml) is not a YAML mapping: it reads as a single text value; 'from:' "
            "names a YAML file of keys, e.g. configs/models/tfidf_logreg.yaml"
        ]
        first_line = passwd.read_text().splitlines()[0]
        assert first_line[:8] not in stderr + stdout


@pytest.mark.timeout(120)  # a blocked open() on the FIFO would hang here, not fail
@pytest.mark.parametrize("kind", ["fifo", "symlink_loop", "dangling_symlink"])
@pytest.mark.parametrize("role", ["data", "config"])
def test_special_files_are_named_not_read(kind, role, tmp_path, monkeypatch, capsys):
    """Paths that cannot be a file of judgements or a config are named for what they are (not 'file not
    found'), without opening them: a FIFO with no writer blocks open() forever."""
    import os

    target = tmp_path / f"{kind}.csv"
    if kind == "fifo":
        os.mkfifo(target)
        what = "is a named pipe (FIFO), not a regular file"
    elif kind == "symlink_loop":
        os.symlink(tmp_path / "other.csv", target)
        os.symlink(target, tmp_path / "other.csv")
        what = "is a symbolic link loop (it leads back to itself)"
    else:
        os.symlink(tmp_path / "gone.csv", target)
        what = f"is a symbolic link to {tmp_path / 'gone.csv'}, which does not exist"
    if role == "data":
        config = tmp_path / "c.yaml"
        config.write_text(f"dataset: {{name: mine, path: {target}, labels: [0, 1]}}\narms: {{control: [aggregate]}}\n")
        expected = f"error: {target}: {what}; expected a data file (csv, jsonl, parquet or a Label Studio json)"
    else:
        config = target
        expected = f"error: {target}: {what}; a config is a YAML file"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    for command in ("run",) if role == "data" else ("validate", "run"):  # validate reads no data
        returncode, stdout, stderr = _run_cli([command, str(config)], monkeypatch, capsys)
        assert returncode == 2, stderr
        assert [line for line in stderr.splitlines() if line.strip()] == [expected]
