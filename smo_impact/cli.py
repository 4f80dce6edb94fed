"""Command-line interface: argument parsing and presentation only.

Every user-input error (config, data, tracking store) ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from smo_impact.errors import ConfigError, SmoError, Terminated

app = typer.Typer(
    name="smo-impact",
    help="When we change how humans label data, what happens to the model?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
)
datasets_app = typer.Typer(help="Built-in datasets: list, show, fetch.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

# Piped output (CI logs, `| tee`) gets a wide console so summary tables do not wrap. No emoji codes:
# a label ':x:' must print as ':x:'. User values in markup strings go through escape().
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=200, emoji=False)
err_console = Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, width=400, emoji=False)

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a config value: path.to.key=value (repeatable)."),
]


def _print_problems(source: str | None, problems: list[str]) -> None:
    """One line for one problem (as `run` prints it), else a count and one indented line each."""
    where = escape(f"{source}: ") if source else ""
    if len(problems) == 1:
        err_console.print(f"[red]error[/red]: {where}{escape(problems[0])}", highlight=False, soft_wrap=True)
        return
    err_console.print(f"[red]error[/red]: {where}{len(problems)} problem(s)", highlight=False)
    for problem in problems:
        err_console.print(f"  - {escape(problem)}", highlight=False, soft_wrap=True)


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    overrides: SetOption = None,
    data: Annotated[
        bool, typer.Option("--data", help="Also load the data and try every arm's steps on it (nothing is trained).")
    ] = False,
) -> None:
    """Check a config and report every problem at once (nothing is run)."""
    from smo_impact.config import load_config
    from smo_impact.runner.plan import plan_runs

    try:
        spec = load_config(config, overrides or [])
    except ConfigError as exc:
        _print_problems(exc.source, exc.problems)
        raise typer.Exit(2) from None
    runs = plan_runs(spec)
    def n_runs(n: int) -> str:
        return f"{n} run" if n == 1 else f"{n} runs"

    arms = ", ".join(f"{a} ({n_runs(sum(r.arm == a for r in runs))})" for a in spec.arms)
    console.print(f"[green]ok[/green]: {escape(str(config))} is valid: {n_runs(len(runs))}; arms: {escape(arms)}", highlight=False)
    if data:
        from smo_impact.runner.run import check_data

        with err_console.status(f"loading {spec.dataset.name} and trying each arm's steps"):
            dataset, _, problems = check_data(spec)
        if problems:
            _print_problems(str(config), problems)
            raise typer.Exit(2)
        points = len({(r.arm, r.grid_label) for r in runs})
        console.print(
            f"data: {escape(dataset.name)} loads and passes its checks ({len(dataset.items)} items, "
            f"{len(dataset.annotations)} judgements); every arm's steps ran on it at each grid point ({points}, "
            f"seed {runs[0].seed}) and left training labels of at least two classes; nothing was featurized or trained",
            highlight=False, soft_wrap=True,
        )


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    overrides: SetOption = None,
    tracking_uri: Annotated[
        Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
    ] = None,
    executor: Annotated[
        Optional[str], typer.Option(help="sequential | local (process pool) | ray; default: the config's execution.executor.")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes for local/ray.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run runs already FINISHED in the store.")] = False,
    gate: Annotated[
        bool, typer.Option("--gate", help="Exit 3 when a regression gate (evaluation.gates) fails: for CI.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Run even when the plan exceeds execution.max_runs.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the planned runs, which the store already has, and an estimated "
                           "time; load the data, but train and log nothing.")
    ] = False,
    register: Annotated[
        Optional[str],
        typer.Option("--register", metavar="NAME", help="Register the best arm's model (highest mean macro-F1) in the "
                     "MLflow model registry as NAME; logs the model of every run (tracking.log_models=all)."),
    ] = None,
) -> None:
    """Run an experiment: every arm x grid point x seed, logged to MLflow.

    Resumable: runs already finished in the tracking store (same resolved spec and data) are
    skipped, so re-running after a crash computes only what is missing.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from smo_impact.config import load_config
    from smo_impact.models.training import report_training_progress
    from smo_impact.provenance import code_version
    from smo_impact.report.summary import render_rich
    from smo_impact.runner.experiment import run_experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri, ui_url

    from smo_impact.runner.executors import make_executor
    from smo_impact.runner.interrupts import Uninterrupted, stop_on_signals, uninterrupted

    spec = load_config(config, overrides or [], allow_many_runs=yes)
    if gate and not spec.evaluation.gates.active:
        raise ConfigError(
            "--gate: evaluation.gates sets no gate; add max_drop, min, max, max_new_false_negatives or "
            "max_new_false_positives", str(config)
        )
    if dry_run:
        _print_dry_run(spec, resolve_tracking_uri(tracking_uri or spec.tracking.uri), force)
        return
    if register:  # the best arm is known only at the end: keep every run's model
        spec = spec.model_copy(update={"tracking": spec.tracking.model_copy(update={"log_models": "all"})})
    uri = resolve_tracking_uri(tracking_uri or spec.tracking.uri)
    execution = spec.execution
    pool = make_executor(executor or execution.executor, workers or execution.workers, execution.ray_address)
    pool.start()  # a process pool's workers import the stack while this process loads the data
    header = f"[bold]{escape(spec.name)}[/bold]"
    console.print(f"{header}: {escape(spec.description.strip())}" if spec.description else header)

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("loading data and features", total=None)
        # A second row for the run being trained: fine-tuning's steps and epochs (a few minutes a run).
        training = progress.add_task("", total=None, visible=False)
        failed, started = 0, False

        def on_progress(run_spec, done: int, total: int, status: str) -> None:
            nonlocal failed, started
            failed += status == "FAILED"
            started = True
            label = escape(run_spec.name) + (f" [red]({failed} failed)[/red]" if failed else "")
            progress.update(task, total=total, completed=done, description=label)
            progress.update(training, visible=False)

        def on_training(step: int, steps: int, epoch: int, epochs: int) -> None:
            nonlocal started
            if not started:  # the data is loaded: the first run is training
                progress.update(task, description="runs")
                started = True
            progress.update(training, visible=True, total=steps, completed=step,
                            description=f"  training: epoch {epoch}/{epochs}, step")

        opened: list[MlflowTracker] = []  # for the experiment id of the UI link

        def open_tracker() -> Uninterrupted:
            with uninterrupted():
                opened.append(MlflowTracker(uri, spec.experiment_name))
                return Uninterrupted(opened[-1])

        try:
            # SIGTERM (CI cancellation, `timeout`, Kubernetes) stops the sweep like Ctrl-C does, and
            # neither interrupts a write to the store (smo_impact.runner.interrupts).
            with stop_on_signals(), report_training_progress(on_training):
                result = run_experiment(spec, open_tracker, on_progress, executor=pool, force=force)
        except KeyboardInterrupt as exc:
            # Click would print "Aborted!" and exit 1; say what happened to the runs instead.
            progress.stop()
            how = "[red]terminated[/red] (SIGTERM)" if isinstance(exc, Terminated) else "[red]interrupted[/red]"
            err_console.print(
                f"{how}: the parent run and any run being logged were marked KILLED; "
                "rerun the same command to resume",
                highlight=False,
            )
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
        progress.update(task, description="done")

    if not result.summary.empty:
        console.print(render_rich(result.summary, spec.evaluation.primary, f"{spec.name}: {spec.evaluation.primary}" + (" split" if spec.evaluation.split else "")))
    if result.takeaway:
        console.print(f"[bold]Takeaway[/bold]: {escape(result.takeaway)}", highlight=False, soft_wrap=True)
    if result.degenerate:
        err_console.print(
            f"[yellow]warning[/yellow]: {len(result.degenerate)} run(s) predict one class for every item (tagged "
            f"smo.degenerate; a broken or untrained model): {escape(', '.join(result.degenerate[:5]))}"
            + (" ..." if len(result.degenerate) > 5 else ""), highlight=False, soft_wrap=True,
        )
    if result.reused:
        console.print(
            f"resumed: {result.reused} finished run(s) reused from the store, {result.computed} computed, "
            f"{result.compared} comparison(s) with a control recomputed",
            highlight=False,
        )
    if result.stale_code:
        versions = sorted({v for _, v in result.stale_code})
        err_console.print(
            f"[yellow]warning[/yellow]: {len(result.stale_code)} reused run(s) were computed by another code "
            f"version ({escape(', '.join(versions))}; now {escape(code_version())}); rerun with --force to "
            "recompute them: " + escape(", ".join(name for name, _ in result.stale_code[:5]))
            + (" ..." if len(result.stale_code) > 5 else ""),
            highlight=False, soft_wrap=True,
        )
    stats = result.cache_stats
    console.print(
        f"features: {int(stats['features/misses'])} computed, "
        f"{int(stats['features/memory_hits'] + stats['features/disk_hits'])} reused "
        f"({stats['features/featurize_seconds']:.1f}s featurizing)",
        highlight=False,
    )
    runs_page = ui_url(uri, opened[0].experiment_id)
    serve = "" if uri.startswith(("http://", "https://")) else (
        f"Serve the UI with [bold]make ui[/bold] (or: mlflow ui --backend-store-uri {escape(uri)}), then open\n")
    console.print(
        f"Logged to MLflow experiment '{escape(spec.experiment_name)}' (parent run {result.parent_run_id}) "
        f"at {escape(uri)}.\n{serve}  runs table: {runs_page}\n  this sweep: {runs_page}/{result.parent_run_id}",
        highlight=False, soft_wrap=True,
    )
    if not result.gates.empty:

        for _, row in result.gates.iterrows():
            verdict = "[green]passed[/green]" if row["gate"] == "passed" else f"[red]failed[/red]: {escape(row['reasons'])}"
            # What the verdict is worth: detectable effect at these seeds, A/A false alarms of this gate.
            mde = [f"{c[4:]} {row[c]:.4f}" for c in result.gates.columns if c.startswith("mde/") and row[c] == row[c]]
            worth = f" (detectable at {int(row['seeds'])} seed(s): {', '.join(mde)})" if mde else ""
            aa = row.get("aa_false_alarms", "")
            worth += f" [A/A false alarms, {escape(aa)}]" if isinstance(aa, str) and aa else ""
            console.print(f"gate {escape(str(row['arm']) + ' [' + str(row['grid']) + ']')}: {verdict}{worth}",
                          highlight=False, soft_wrap=True)
    if register:
        from smo_impact.runner.logged_models import best_model

        label, run_id, model_uri = best_model(result.summary, result.runs, spec.evaluation.primary)
        version = opened[0].register_model(model_uri, register)
        console.print(f"registered model '{escape(register)}' version {version}: the best arm, {escape(label)} "
                      f"(run {run_id}, {model_uri})", highlight=False, soft_wrap=True)
    if result.failures:
        err_console.print(f"[red]{len(result.failures)} run(s) failed[/red]:", highlight=False)
        for name, error in result.failures:
            err_console.print(f"  - {escape(name)}: {escape(error)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if gate and result.gate_failed:
        err_console.print("[red]gate failed[/red] (see the gate lines above)", highlight=False)
        raise typer.Exit(3)


def _print_dry_run(spec, uri: str, force: bool) -> None:  # noqa: ANN001 - an ExperimentConfig
    from rich.table import Table

    from smo_impact.runner.dry_run import dry_run

    with err_console.status(f"loading {spec.dataset.name} to key the runs, reading {uri}"):
        plan = dry_run(spec, uri, force)
    table = Table(title=f"{spec.name}: {len(plan.runs)} planned run(s)", title_justify="left")
    for column in ("run", "arm", "grid", "seed", "action"):
        table.add_column(column)
    for row in plan.runs.itertuples():
        action = "[dim]reuse[/dim]" if row.action == "reuse" else "compute"
        table.add_row(escape(row.name), escape(row.arm), escape(row.grid), str(row.seed), action)
    console.print(table)
    reused = len(plan.runs) - plan.to_compute
    estimate = ("unknown: " + plan.basis) if plan.seconds_per_run != plan.seconds_per_run else (
        f"~{_duration(plan.estimate_seconds)} of compute ({plan.basis}, {plan.seconds_per_run:.1f} s each)")
    console.print(f"dry run: {plan.to_compute} to compute, {reused} to reuse from {escape(uri)}; estimate: "
                  f"{escape(estimate)}; nothing was trained or logged", highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


@app.command()
def results(
    experiment: Annotated[str, typer.Argument(help="MLflow experiment name (its latest parent run) or a run id.")],
    tracking_uri: Annotated[
        Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
    ] = None,
) -> None:
    """Print a stored experiment's summary table and takeaway (read from the store; nothing is rerun)."""
    from smo_impact.report.results import load_results
    from smo_impact.report.summary import render_rich
    from smo_impact.tracking.mlflow_tracker import ui_url
    from smo_impact.tracking.reader import MlflowReader

    reader = MlflowReader(tracking_uri)
    stored = load_results(reader, experiment)
    console.print(render_rich(stored.summary, stored.split, f"{stored.experiment}: {stored.split}" + (" split" if stored.on_split else "")))
    if stored.takeaway:
        console.print(f"[bold]Takeaway[/bold]: {escape(stored.takeaway)}", highlight=False, soft_wrap=True)
    console.print(f"parent run {stored.parent_id}: {ui_url(reader.uri, stored.experiment_id, stored.parent_id)}",
                  highlight=False, soft_wrap=True)


@app.command()
def compare(
    experiment_a: Annotated[str, typer.Argument(help="First experiment (name or run id): A.")],
    experiment_b: Annotated[str, typer.Argument(help="Second experiment (name or run id): B.")],
    tracking_uri: Annotated[
        Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
    ] = None,
) -> None:
    """Compare two stored experiments' arms on the headline metrics both logged (mean over seeds, B - A)."""
    from rich.table import Table

    from smo_impact.report.results import compare_results, load_results
    from smo_impact.tracking.reader import MlflowReader

    reader = MlflowReader(tracking_uri)
    a, b = load_results(reader, experiment_a), load_results(reader, experiment_b)
    table, shared = compare_results(a, b)
    out = Table(title=f"A = {a.experiment} ({a.split}), B = {b.experiment} ({b.split}): mean over seeds",
                title_justify="left")
    for column in table.columns:
        out.add_column(column, justify="left" if column in ("arm", "grid") else "right")
    for row in table.itertuples(index=False):
        cells = [escape(str(row[0])), escape(str(row[1]))]
        for column, value in zip(table.columns[2:], row[2:]):
            sign = "+" if column.endswith("B-A") and value >= 0 else ""
            cells.append("" if value != value else f"{sign}{value:.3f}")
        out.add_row(*cells)
    console.print(out)
    only = table[table[[c for c in table.columns if c.endswith(" A")]].isna().all(axis=1)
                 | table[[c for c in table.columns if c.endswith(" B")]].isna().all(axis=1)]
    if not only.empty:
        console.print(f"{len(only)} arm(s) in only one experiment (empty side); arms are matched by name and grid point",
                      highlight=False)


@app.command()
def init(
    source: Annotated[str, typer.Argument(help="A built-in dataset name, or your annotations file (CSV/TSV, JSONL, Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the experiment YAML.")] = Path("experiment.yaml"),
    name: Annotated[Optional[str], typer.Option(help="Experiment name (default: from the dataset).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Write a first experiment (control vs label noise) for a dataset or a file of yours.

    For a file, its layout (long or wide) and columns are detected and every guess is listed at the
    top of the YAML; the config is validated before the command ends.
    """
    from smo_impact.config import load_config
    from smo_impact.scaffold import scaffold, to_yaml

    if out.exists() and not force:
        raise ConfigError(f"{out} exists; choose another --out or add --force to overwrite it")
    config, notes = scaffold(source, name)
    out.write_text(to_yaml(config, notes, source), encoding="utf-8")
    console.print(f"wrote {escape(str(out))}", highlight=False)
    for note in notes:
        console.print(f"  - {escape(note)}", highlight=False, soft_wrap=True)
    try:
        load_config(out)
    except ConfigError as exc:
        _print_problems(str(out), exc.problems)
        err_console.print("edit the file to fix these, then: smo-impact validate " + escape(str(out)), highlight=False)
        raise typer.Exit(2) from None
    console.print(f"[green]ok[/green]: valid; next: smo-impact validate {escape(str(out))} --data, then "
                  f"smo-impact run {escape(str(out))} --dry-run", highlight=False)


@app.command("list")
def list_components() -> None:
    """List the registered treatments, models and datasets with their parameters."""
    from rich.table import Table

    from smo_impact.data.catalog import DATASETS
    from smo_impact.models import MODELS
    from smo_impact.treatments import TREATMENTS

    for title, registry in (("treatments", TREATMENTS), ("models", MODELS)):
        table = Table(title=title, title_justify="left")
        table.add_column("name")
        table.add_column("parameters (default)")
        table.add_column("description")
        for name, cls in registry.items():
            params = ", ".join(
                f"{p}={f.default!r}" if not f.is_required() else f"{p} (required)"
                for p, f in cls.Params.model_fields.items()
            )
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            table.add_row(name, params, doc)
        console.print(table)
    table = Table(title="datasets", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for name, info in DATASETS.items():
        table.add_row(name, info.description)
    console.print(table)


@datasets_app.command("list")
def datasets_list() -> None:
    """List built-in datasets and whether their files are available locally."""
    from rich.table import Table

    from smo_impact.data.catalog import DATASETS, _locate

    table = Table(title_justify="left")
    table.add_column("name")
    table.add_column("items per split")
    table.add_column("raters", justify="right")
    table.add_column("labels")
    table.add_column("available")
    table.add_column("description")
    for name, info in DATASETS.items():
        try:
            _locate(info)
            available = "[green]yes[/green]"
        except SmoError:
            available = "[yellow]no[/yellow]"
        splits = " / ".join(f"{split} {n}" for split, n in info.splits.items())
        table.add_row(name, splits, str(info.raters or ""), info.label_meaning, available, info.description)
    console.print(table)


@datasets_app.command("show")
def datasets_show(
    name: Annotated[
        str, typer.Argument(help="Dataset name, a dataset YAML (configs/datasets/), or an experiment YAML whose dataset to show.")
    ],
    overrides: SetOption = None,
) -> None:
    """Summarize a dataset: items, judgements and raters per split, judgements per item, label
    distribution, per-slice counts, and (built-ins) the card: schema, fields, rater attributes."""
    from rich.table import Table

    from smo_impact.config import DatasetSpec
    from smo_impact.data.catalog import DATASETS, get_info
    from smo_impact.data.loader import dataset_spec_from, load_data

    if name.endswith((".yaml", ".yml")):
        spec = dataset_spec_from(name, overrides or [])
    else:
        get_info(name)  # unknown names fail with a did-you-mean before any file is read
        spec = DatasetSpec(name=name, binarize=False)
    data = load_data(spec)
    info = DATASETS.get(spec.name) if spec.path is None else None
    summary = data.summary()

    card = Table(title=f"{data.name}  (digest {data.digest()})", title_justify="left", show_header=False)
    if info is not None:
        card.add_row("description", info.description)
        card.add_row("upstream", f"github.com/{info.upstream}" if info.upstream else "")
        card.add_row("license", info.license)
        card.add_row("citation", info.citation)
        card.add_row("labels", info.label_meaning)
        for field, meaning in {**info.item_fields}.items():
            card.add_row(f"item: {field}", meaning)
        for field, meaning in info.annotation_fields.items():
            card.add_row(f"answer: {field}", meaning)
        for field, meaning in info.rater_attributes.items():
            card.add_row(f"rater: {field}", meaning)
    else:
        card.add_row("files", ", ".join(spec.paths))
    if spec.split is not None:
        card.add_row("splits made (dataset.split)", escape(spec.split.model_dump_json()))
    card.add_row("labels (benign -> harmful)", ", ".join(map(str, data.labels)))
    card.add_row("positive label", str(data.positive_label))
    if data.binary_positive:
        card.add_row("binary default", f"harmful = {', '.join(map(str, data.binary_positive))}")
    card.add_row(
        "judgements per item",
        f"mean {summary['judgements_per_item_mean']:.2f}, min {summary['judgements_per_item_min']}, "
        f"max {summary['judgements_per_item_max']}",
    )
    console.print(card)

    splits = Table(title="per split", title_justify="left")
    for column in ("split", "items", "judgements", "raters"):
        splits.add_column(column, justify="left" if column == "split" else "right")
    for split, n in summary["items_per_split"].items():
        splits.add_row(split, str(n), str(summary["judgements_per_split"][split]), str(summary["raters_per_split"][split]))
    splits.add_row("all", str(summary["items"]), str(summary["judgements"]), str(summary["raters"]), style="bold")
    console.print(splits)

    labels = Table(title="label distribution (judgements)", title_justify="left")
    labels.add_column("label")
    labels.add_column("judgements", justify="right")
    labels.add_column("share", justify="right")
    for label, n in summary["label_counts"].items():
        labels.add_row(str(label), str(n), f"{n / max(summary['judgements'], 1):.1%}")
    console.print(labels)

    for column, counts in summary["slices"].items():
        table = Table(title=f"slice: {column} (items)", title_justify="left")
        table.add_column(column)
        table.add_column("items", justify="right")
        for value, n in counts.items():
            table.add_row(str(value), str(n))
        console.print(table)
    if data.workers is not None:
        workers = Table(title=f"raters with attributes: {len(data.workers)}", title_justify="left")
        for column in data.workers.columns:
            workers.add_column(str(column))
        for row in data.workers.head(10).itertuples(index=False):
            workers.add_row(*map(str, row))
        console.print(workers)


@datasets_app.command("fetch")
def datasets_fetch(name: Annotated[str, typer.Argument(help="Dataset name.")]) -> None:
    """Download a dataset's files into the user cache and verify their checksums."""
    from smo_impact.data.catalog import fetch_dataset

    for path in fetch_dataset(name):
        console.print(f"verified {path}", highlight=False)


@app.command()
def audit(
    source: Annotated[str, typer.Argument(help="Built-in dataset name, a dataset YAML (configs/datasets/), or an experiment YAML.")],
    targets: Annotated[Optional[Path], typer.Option("--targets", "-t", help="Quality targets (KPI) YAML; see configs/targets/.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: audit/<dataset>).")] = None,
    split: Annotated[str, typer.Option(help="Audit one split (train, dev, test) or all.")] = "all",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for alpha's interval (0: none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    gold_column: Annotated[Optional[str], typer.Option(help="Items column with gold labels (default: auto).")] = None,
    by: Annotated[
        Optional[str],
        typer.Option(help="Agreement per group of these rater attributes or item columns, comma-separated, e.g. gender,age."),
    ] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Also log the audit as its own MLflow run.")] = False,
    experiment: Annotated[str, typer.Option(help="MLflow experiment for --mlflow.")] = "audit",
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")] = None,
    overrides: SetOption = None,
) -> None:
    """Audit annotation quality (agreement, raters, items, slices) against KPI targets.

    Writes report.html / report.md with plots; exits 1 when a target fails (CI gate).
    """
    from rich.table import Table

    from smo_impact.data.catalog import get_info, load_dataset
    from smo_impact.data.loader import dataset_spec_from, load_data
    from smo_impact.quality.audit import QualityAudit
    from smo_impact.quality.targets import evaluate_targets, load_targets
    from smo_impact.report.audit import alpha_in_words, write_audit_report

    # Everything the user wrote is checked before any data is read.
    target_spec = load_targets(targets) if targets is not None else None
    groups = [c.strip() for c in by.split(",") if c.strip()] if by is not None else None
    quality_audit = QualityAudit(
        split=None if split == "all" else split, n_boot=bootstrap, gold_column=gold_column, random_state=seed, by=groups
    )
    if source.endswith((".yaml", ".yml")):
        spec = dataset_spec_from(source, overrides or [])
    else:
        get_info(source)  # unknown names fail with a did-you-mean before any file is read
        spec = None
    tracker = None
    if mlflow:  # an unreachable server or a read-only store fails here, in seconds, not after the audit
        from smo_impact.tracking.mlflow_tracker import MlflowTracker

        tracker = MlflowTracker(tracking_uri, experiment)

    with console.status(f"loading {source}") as status:
        # A built-in name is audited as published (raw rating scale, duplicates counted, not refused);
        # a config is audited as its experiment sees the data.
        data = load_dataset(source) if spec is None else load_data(spec)
        quality_audit.fit(data, on_step=lambda step: status.update(f"auditing {data.name}: {step}"))
        results = evaluate_targets(target_spec, quality_audit) if target_spec is not None else []
        status.update("writing the report")
        out_dir = out or Path("audit") / data.name
        written = write_audit_report(quality_audit, results, out_dir)

    summary = Table(title=f"{data.name}: annotation quality ({split})", title_justify="left", show_header=False)
    for key, value in quality_audit.summary_.items():
        summary.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(summary)
    console.print(f"Fleiss' kappa: {quality_audit.fleiss_.note}", highlight=False)
    alpha = quality_audit.summary_["krippendorff_alpha"]
    console.print(f"Krippendorff's alpha {alpha:.3f}, {alpha_in_words(alpha)}", highlight=False)
    if groups:
        console.print(_group_table(quality_audit.slices_))
    if results:
        verdicts = Table(title="quality targets", title_justify="left")
        for column in ("target", "result", "value", "judged", "failing"):
            verdicts.add_column(column, justify="left" if column in ("target", "result") else "right")
        for r in results:
            verdicts.add_row(
                r.target.label,
                "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]",
                f"{r.value:.3f}",
                str(r.judged),
                str(len(r.failing)) + (f" ({r.note})" if r.note else ""),
            )
        console.print(verdicts)
        for r in results:
            if r.failing.empty:
                continue
            console.print(f"[red]failing[/red] {r.target.label}:", highlight=False)
            for row in r.failing.head(20).itertuples(index=False):
                console.print(f"  - {row.who}: {row.value:.3f} (n={row.n})", highlight=False)
            if len(r.failing) > 20:
                console.print(f"  ... and {len(r.failing) - 20} more (see {written['markdown']})", highlight=False)
    console.print(f"Report: {written['html']} and {written['markdown']}", highlight=False)

    if tracker is not None:
        from smo_impact.report.audit import log_audit

        params = {
            "dataset": data.name, "split": split, "bootstrap": bootstrap, "seed": seed,
            "targets": str(targets) if targets else "", "data_digest": data.digest(),
        }
        run_id = log_audit(tracker, quality_audit, results, written, params)
        console.print(f"Logged to MLflow experiment '{experiment}' (run {run_id}) at {tracker.location}", highlight=False)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


def _group_table(slices):  # noqa: ANN001, ANN202 (a DataFrame; pandas is not imported at module level)
    """Agreement per group: the pairable items (>= 2 judgements within the group) it rests on first."""
    from rich.table import Table

    table = Table(title="agreement by group (pairable items: judged by >= 2 of the group's raters)", title_justify="left")
    alphas = [c for c in slices.columns if c.startswith("krippendorff_alpha")]
    columns = ["slice", "value", "raters", "judgements", "items", "pairable_items", "fleiss_kappa", *alphas]
    for column in columns:
        table.add_column(column.replace("krippendorff_", "").replace("_", " "), justify="left" if column in ("slice", "value") else "right")
    for row in slices.itertuples(index=False):
        cells = [getattr(row, c) for c in columns]
        cells[0] = f"{row.slice} ({'raters' if row.kind == 'rater' else 'items'})"
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else escape(str(v)) for v in cells))
    return table


TrackingUriOption = Annotated[
    Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
]


@app.command()
def export(
    experiment: Annotated[str, typer.Argument(help="MLflow experiment name (its latest parent run) or a run id.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet | csv | sqlite | duckdb")] = "parquet",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: export/<experiment>).")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Export an experiment's runs, metrics, params, quality, regressions and rater statistics as tidy tables."""
    from smo_impact.report.export import export_experiment

    with console.status(f"reading {experiment}") as status:
        paths = export_experiment(
            experiment, out or Path("export") / experiment, fmt, tracking_uri,
            progress=lambda name: status.update(f"reading artifacts of {name}"),
        )
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


@app.command()
def report(
    experiment: Annotated[str, typer.Argument(help="MLflow experiment name (its latest parent run) or a run id.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: reports/<experiment>).")] = None,
    tracking_uri: TrackingUriOption = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Also log the report on the parent run (report/).")] = True,
) -> None:
    """Build an HTML + Markdown report of an experiment from the MLflow store."""
    from smo_impact.report.experiment_report import report_experiment

    with console.status(f"building the report of {experiment}"):
        written, parent_id = report_experiment(experiment, out, tracking_uri, log)
    console.print(f"Report: {written['html']} and {written['markdown']}", highlight=False)
    if log:
        console.print(f"Logged on parent run {parent_id} under report/", highlight=False)


@app.command()
def power(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    effect: Annotated[float, typer.Option(min=0.0, help="The difference to detect, in the metric's units.")] = 0.02,
    metric: Annotated[str, typer.Option(help="The metric the arms are judged on.")] = "test/macro_f1",
    pilot: Annotated[int, typer.Option(min=2, help="Seeds to run first when an arm has fewer than 2 in the store.")] = 5,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="Significance level of the t-test across seeds.")] = 0.05,
    target_power: Annotated[float, typer.Option("--power", min=0.5, max=0.999, help="Probability of detecting the effect.")] = 0.8,
    overrides: SetOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """How many seeds does each arm need? Minimum detectable effect and seeds for --effect.

    Reads the per-seed treatment - control differences of the runs already in the store (any
    seeds); an arm with fewer than two runs a pilot of --pilot seeds first (logged like `run`).
    """
    import pandas as pd
    from rich.table import Table

    from smo_impact.analysis.power import plan_power, stored_differences
    from smo_impact.config import load_config
    from smo_impact.data.loader import load_data
    from smo_impact.runner.experiment import run_experiment
    from smo_impact.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri

    spec = load_config(config, overrides or [])
    namespace, _, name = metric.partition("/")
    if namespace not in spec.evaluation.namespaces or not name:
        raise ConfigError(
            f"--metric {metric!r}: name a benchmark metric '<namespace>/<metric>' with namespace one of "
            f"{', '.join(spec.evaluation.namespaces)}, e.g. {spec.evaluation.primary}/macro_f1", str(config)
        )
    uri = resolve_tracking_uri(tracking_uri or spec.tracking.uri)
    tracker = MlflowTracker(uri, spec.experiment_name)
    with console.status("reading the data and the stored runs"):
        data = load_data(spec.dataset)
        digest = data.digest()
        runs = stored_differences(spec, tracker, digest, metric)
    arms = [a for a in spec.arms if a != spec.control]
    counts = runs.groupby("arm").size() if not runs.empty else pd.Series(dtype=int)
    if any(counts.get(a, 0) < 2 for a in arms):
        pilot_config = spec.model_copy(update={"seeds": sorted(set(range(pilot)) | set(spec.seeds))})
        console.print(f"running a pilot of {len(pilot_config.seeds)} seeds (some arm has fewer than 2 in the store)",
                      highlight=False)
        run_experiment(pilot_config, lambda: tracker, dataset=data)
        runs = stored_differences(spec, tracker, digest, metric)
    rows = plan_power(runs, metric, effect, len(spec.seeds), spec.control, alpha, target_power)
    table = Table(title=f"{spec.name}: {metric}, two-sided t-test across seeds, alpha {alpha:g}, power {target_power:g}",
                  title_justify="left")
    for column in ("arm", "grid", "seeds in store", "mean Δ", "sd of Δ", f"MDE at {len(spec.seeds)} seeds",
                   f"seeds for |Δ| = {effect:g}"):
        table.add_column(column, justify="left" if column in ("arm", "grid") else "right")
    for r in rows:
        needed = "> 10000" if r.needed > 10_000 else str(r.needed)
        table.add_row(escape(r.arm), escape(r.grid), str(r.seeds), f"{r.mean:+.4f}", f"{r.sd:.4f}",
                      "n/a" if pd.isna(r.mde) else f"{r.mde:.4f}", needed)
    console.print(table)


@app.command()
def rca(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    run_name: Annotated[str, typer.Argument(help="Treatment run name as in the MLflow UI, e.g. 'label_noise rate=0.4 s0' (the older 'md-agreement:arm=label_noise,noise.rate=0.4,seed=0' works too).")],
    by: Annotated[str, typer.Option(help="Comma-separated grouping: step, cause, worker, or item columns (e.g. domain).")] = "step,cause",
    metric: Annotated[str, typer.Option(help="macro_f1 | recall | f1 | accuracy on the primary benchmark.")] = "macro_f1",
    top_k: Annotated[int, typer.Option(min=1, help="Groups reverted together for the explained fraction.")] = 3,
    benchmark: Annotated[str | None, typer.Option(help="Benchmark namespace to attribute (default: the primary one).")] = None,
    max_groups: Annotated[int, typer.Option(min=1, help="Groups retrained per dimension; more are screened first.")] = 20,
    overrides: SetOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Root-cause attribution: which groups of a treatment run's label changes caused its regression.

    Logs the ranking on the stored run of the same spec (rca/), where `smo-impact report` shows it.
    """
    from rich.table import Table

    from smo_impact.analysis.rca import attribute_run
    from smo_impact.config import load_config
    from smo_impact.tracking.mlflow_tracker import MlflowTracker

    spec = load_config(config, overrides or [])
    tracker = MlflowTracker(tracking_uri or spec.tracking.uri, spec.tracking.experiment or spec.name, create=False)
    with console.status(f"attributing {run_name}"):
        result, run_id = attribute_run(spec, run_name, tracker, by=tuple(b.strip() for b in by.split(",")), metric=metric,
                                       top_k=top_k, benchmark=benchmark, max_groups=max_groups)
    table = Table(title=f"{run_name}: {metric} {result.treated_score_:.3f} vs control {result.control_score_:.3f} "
                        f"(regression {result.regression_:+.3f})", title_justify="left")
    for column in ("dimension", "group", "changes", "recovered", "fraction"):
        table.add_column(column, justify="left" if column in ("dimension", "group") else "right")
    for row in result.ranking_.head(15).itertuples():
        table.add_row(row.dimension, row.group, str(row.changes), f"{row.recovered:+.4f}", f"{row.fraction:.2f}")
    if getattr(result, "fallback_", None):
        console.print(f"note: {result.fallback_}", highlight=False)
    console.print(table)
    console.print(f"top {top_k} groups reverted together explain {result.explained_:.0%} of the regression", highlight=False)
    console.print(f"logged on run {run_id} under rca/" if run_id else "not logged: no finished run of this spec in the store", highlight=False)


def _show_data_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Data warnings (single-judgement items, sparse raters, kept leakage) as one readable line."""
    if category.__name__ == "DataWarning":  # by name: importing the data package here costs pandas
        err_console.print(f"[yellow]warning[/yellow]: {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    warnings.showwarning = _show_data_warning
    try:
        app()
    except SmoError as exc:
        message = " ".join(str(exc).split())
        err_console.print(f"[red]error[/red]: {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]: running runs were marked KILLED", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
