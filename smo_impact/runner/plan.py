"""Expand an experiment config into named, keyed runs: arm x grid point x seed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smo_impact.config import ExperimentConfig, ModelSpec, StepSpec, stable_hash


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs to know; its name and key derive from it."""

    dataset: str
    arm: str
    steps: tuple[StepSpec, ...]
    model: ModelSpec
    grid: tuple[tuple[str, Any], ...]
    seed: int
    is_control: bool
    stream: int = 0  # the arm's random stream (config ``streams``): A/A arms differ only here
    costs: Any = field(default=None, hash=False)  # the config's CostSpec, or None: judgements are not priced

    @property
    def entropy(self) -> int | list[int]:
        """Seed material of the run's treatment steps: the seed, or (seed, stream)."""
        return self.seed if self.stream == 0 else [self.seed, self.stream]

    @property
    def model_seed(self) -> int:
        """The seed the model trains with (initial weights, batch order, solver randomness)."""
        if self.stream == 0:
            return self.seed
        return int(np.random.SeedSequence([self.seed, self.stream]).generate_state(1)[0] >> 1)

    @property
    def grid_label(self) -> str:
        """``noise.rate=0.2`` (comma-joined), or ``-`` for an arm without a sweep."""
        return ",".join(f"{k}={v}" for k, v in self.grid) or "-"

    @property
    def name(self) -> str:
        """Short, with what differs first: ``label_noise rate=0.2 s1`` (the arm, its grid point, the
        seed). The MLflow runs table cuts names at ~25 characters, so the dataset (a tag and an input
        of every run) is left out and a grid key loses its step (``noise.rate`` -> ``rate``) unless
        two keys of the point would then read alike."""
        short = [k.rsplit(".", 1)[-1] for k, _ in self.grid]
        labels = [s if short.count(s) == 1 else k for s, (k, _) in zip(short, self.grid)]
        return " ".join([self.arm, *(f"{label}={v}" for label, (_, v) in zip(labels, self.grid)), f"s{self.seed}"])

    @property
    def long_name(self) -> str:
        """The name runs had before issue 19 (``md-agreement:arm=label_noise,noise.rate=0.2,seed=1``):
        still accepted wherever a run is named (``smo-impact rca``)."""
        parts = [f"arm={self.arm}", *(f"{k}={v}" for k, v in self.grid), f"seed={self.seed}"]
        return f"{self.dataset}:" + ",".join(parts)

    def named(self, name: str) -> bool:
        """Whether ``name`` names this run, in the short or the long form."""
        return name.strip() in (self.name, self.long_name)

    def resolved(self, config: ExperimentConfig) -> dict[str, Any]:
        """The run's own resolved config: what a person needs to reproduce it alone."""
        return {
            "experiment": config.name,
            "dataset": config.dataset.model_dump(mode="json"),
            "arm": self.arm,
            "steps": [s.as_yaml() for s in self.steps],
            "grid": dict(self.grid),
            "model": self.model.model_dump(mode="json"),
            "evaluation": config.evaluation.model_dump(mode="json"),
            "seed": self.seed,
            **({"stream": self.stream} if self.stream else {}),
            **({"costs": self.costs.model_dump(mode="json")} if self.costs is not None else {}),
        }

    def key(self, config: ExperimentConfig, data_digest: str) -> str:
        """Identity of the treat -> train -> score stage: same key, same numbers.

        Gates are left out: they only judge a comparison, so changing one re-judges stored runs
        instead of retraining them; so are the impact analysis's ``outcomes`` (read on the parent).
        """
        resolved = self.resolved(config)
        resolved["evaluation"] = {k: v for k, v in resolved["evaluation"].items() if k not in ("gates", "outcomes")}
        return stable_hash({**resolved, "data_digest": data_digest})

    def control(self, specs: list[RunSpec]) -> RunSpec | None:
        """The control run this run is compared with: the control arm's run of the same seed."""
        if self.is_control:
            return None
        return next((s for s in specs if s.is_control and s.seed == self.seed), None)


# Bump when the comparison stage computes something differently: stored comparisons are redone.
COMPARISON_VERSION = 2


def comparison_key(treatment_key: str, control_key: str, config: ExperimentConfig) -> str:
    """Identity of a comparison: both runs' keys and every setting the comparison reads."""
    evaluation = config.evaluation.model_dump(mode="json")
    settings = {k: evaluation[k] for k in ("threshold", "bootstrap", "confidence", "gates")}
    return stable_hash(
        {"treatment": treatment_key, "control": control_key, "settings": settings, "version": COMPARISON_VERSION}
    )


def plan_runs(config: ExperimentConfig) -> list[RunSpec]:
    """Control arm first (treatment runs compare against it), then arms in config order."""
    arm_order = [config.control] + [a for a in config.arms if a != config.control]
    runs: list[RunSpec] = []
    for arm in arm_order:
        grid = config.sweep.get(arm, {})
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            point = tuple(zip(keys, values))
            steps, model = _apply_grid_point(config.arms[arm], config.model, point)
            for seed in config.seeds:
                runs.append(
                    RunSpec(
                        dataset=config.dataset.name,
                        arm=arm,
                        steps=steps,
                        model=model,
                        grid=point,
                        seed=seed,
                        is_control=arm == config.control,
                        stream=config.streams.get(arm, 0),
                        costs=config.costs,
                    )
                )
    return runs


def _apply_grid_point(
    steps: list[StepSpec], model: ModelSpec, point: tuple[tuple[str, Any], ...]
) -> tuple[tuple[StepSpec, ...], ModelSpec]:
    updates: dict[str, dict[str, Any]] = {}
    for key, value in point:
        target, _, param = key.partition(".")
        updates.setdefault(target, {})[param] = value
    new_steps = tuple(
        StepSpec(name=s.name, params={**s.params, **updates.get(s.name, {})}) for s in steps
    )
    new_model = ModelSpec(name=model.name, params={**model.params, **updates.get("model", {})})
    return new_steps, new_model
