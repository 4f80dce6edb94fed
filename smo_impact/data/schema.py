"""The annotation data model shared by every stage.

Long format, crowd-kit's vocabulary: one row per judgement with ``task``, ``worker``, ``label``
(plus optional extra answer columns). Item text and metadata live in an items table keyed by
``task`` (``text``, ``split`` and slice columns); rater attributes in a workers table keyed by
``worker``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smo_impact.errors import DataError, shown

ITEM_COLUMNS = ("task", "text", "split")
ANNOTATION_COLUMNS = ("task", "worker", "label")
SPLITS = ("train", "dev", "test")


def _plain(value: object) -> object:
    """numpy scalars print as np.int64(7); users expect 7."""
    return value.item() if isinstance(value, np.generic) else value


def isin(values: pd.Series, allowed: pd.Series | list) -> np.ndarray:
    """``values.isin(allowed)`` as a bool array, fast for text keys.

    pandas 3's ``str`` dtype ``isin`` turns every allowed value into a pyarrow scalar in Python
    (5 s for 200k task ids); pyarrow's ``is_in`` kernel does the same in 0.3 s.
    """
    allowed = allowed if isinstance(allowed, pd.Series) else pd.Series(list(allowed), dtype=object)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            haystack = pa.array(allowed, from_pandas=True).cast(pa.large_string())
            needles = pa.array(values, from_pandas=True).cast(pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # not all text: pandas handles mixed types
        else:
            return pc.is_in(needles, value_set=haystack).fill_null(False).to_numpy(zero_copy_only=False)
    return values.isin(allowed).to_numpy(dtype=bool)


def positions_in(values: pd.Series, labels: tuple | list) -> np.ndarray:
    """Each value's position in ``labels`` (-1 when outside), like ``Index.get_indexer``.

    Looks up the few distinct values only: ``get_indexer`` on 10M text labels first turns them
    into Python strings (seconds); pyarrow's factorize does not.
    """
    value_codes, distinct = pd.factorize(values)
    if len(distinct) == 0:
        return np.full(len(values), -1, dtype=np.intp)
    found = pd.Index(list(labels)).get_indexer(distinct)
    return np.where(value_codes >= 0, found[np.maximum(value_codes, 0)], -1)


def vote_counts(annotations: pd.DataFrame, labels: tuple | list) -> pd.DataFrame:
    """Tasks x declared labels matrix of vote counts, tasks sorted.

    A vectorised crosstab (``pd.crosstab`` is ~50x slower on 30k judgements); labels outside
    ``labels`` are not counted.
    """
    # factorize hashes; np.unique would sort every judgement's task id (5x slower at 10M rows).
    task_codes, tasks = pd.factorize(annotations["task"], sort=True)
    label_codes = positions_in(annotations["label"], labels)
    ok = label_codes >= 0
    flat = task_codes[ok] * len(labels) + label_codes[ok]
    counts = np.bincount(flat, minlength=len(tasks) * len(labels)).reshape(len(tasks), len(labels))
    return pd.DataFrame(counts, index=pd.Index(tasks, name="task"), columns=list(labels))


@dataclass(frozen=True)
class AnnotationSet:
    """A multi-rater labeled dataset.

    Attributes:
        name: Dataset name, e.g. ``md-agreement``.
        items: One row per item: ``task``, ``text``, ``split`` and slice columns.
        annotations: One row per judgement: ``task``, ``worker``, ``label`` and extra answers.
        labels: The declared label set, in order (binary: ``[0, 1]``).
        positive_label: The label treated as the harmful/positive class in metrics.
        workers: Optional rater attributes keyed by ``worker``.
        slice_columns: Items columns usable as evaluation slices.
        binary_positive: The dataset's documented default binary rule for a non-binary scale:
            the raw labels that count as harmful (ConvAbuse: ``(-1, -2, -3)``). Empty when
            ``labels`` is already binary. :meth:`binarized` applies it.
        ordinal: Whether ``labels`` is an ordered scale (benign to harmful), e.g. a severity
            scale: K-class runs then also report ordinal metrics (MAE, quadratic-weighted kappa).
        split_spec: How the splits were made when the data had none (``dataset.split`` as JSON);
            empty when they came with the data. Part of the digest.
    """

    name: str
    items: pd.DataFrame
    annotations: pd.DataFrame
    labels: tuple = (0, 1)
    positive_label: object = 1
    workers: pd.DataFrame | None = None
    slice_columns: tuple[str, ...] = ()
    binary_positive: tuple = ()
    ordinal: bool = False
    split_spec: str = ""
    _digest: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the tables against the data model; raise DataError naming the problem."""
        for table_name, table, required in (
            ("items", self.items, ITEM_COLUMNS),
            ("annotations", self.annotations, ANNOTATION_COLUMNS),
        ):
            missing = [c for c in required if c not in table.columns]
            if missing:
                raise DataError(
                    f"{self.name}: column(s) {', '.join(missing)} missing from the {table_name} "
                    f"table; found: {', '.join(map(str, table.columns))}. "
                    "Map them with dataset.column_map."
                )
        if self.items["task"].duplicated().any():
            dup = self.items.loc[self.items["task"].duplicated(), "task"].iloc[0]
            raise DataError(f"{self.name}: item {shown(dup)} appears more than once in the items table")
        bad_labels = ~self.annotations["label"].isin(self.labels)
        if bad_labels.any():
            row = self.annotations.loc[bad_labels].iloc[0]
            raise DataError(
                f"{self.name}: label {shown(row['label'])} (task {shown(row['task'])}, worker "
                f"{shown(row['worker'])}) is outside the declared label set {list(self.labels)}"
            )
        outside = [_plain(v) for v in self.binary_positive if v not in self.labels]
        if outside:
            raise DataError(
                f"{self.name}: binary_positive {outside} is outside the declared label set "
                f"{list(self.labels)}"
            )
        unknown = ~isin(self.annotations["task"], self.items["task"])
        if unknown.any():
            raise DataError(
                f"{self.name}: {int(unknown.sum())} annotation(s) refer to unknown items, "
                f"e.g. task {shown(self.annotations.loc[unknown, 'task'].iloc[0])}"
            )

    # -- views ------------------------------------------------------------------------------
    def split(self, name: str) -> pd.DataFrame:
        """Items of one split, in task order."""
        return self.items.loc[self.items["split"] == name]

    def split_annotations(self, name: str) -> pd.DataFrame:
        """Judgements on the items of one split."""
        tasks = self.split(name)["task"]
        return self.annotations.loc[isin(self.annotations["task"], tasks)]

    def vote_counts(self) -> pd.DataFrame:
        """Items x labels matrix of vote counts (the human vote distribution, unnormalised)."""
        return vote_counts(self.annotations, self.labels)

    def binarized(self) -> AnnotationSet:
        """This dataset under its default binary rule: ``label`` becomes 1 if the raw label is in
        ``binary_positive``, else 0; the raw label is kept in ``label_raw``.

        Returns ``self`` when there is no rule (the labels are already the training scale).
        """
        if not self.binary_positive:
            return self
        annotations = self.annotations.copy()
        annotations["label_raw"] = annotations["label"]
        annotations["label"] = annotations["label"].isin(self.binary_positive).astype("int64")
        return AnnotationSet(
            name=self.name,
            items=self.items,
            annotations=annotations,
            labels=(0, 1),
            positive_label=1,
            workers=self.workers,
            slice_columns=self.slice_columns,
            split_spec=self.split_spec,
        )

    # -- provenance -------------------------------------------------------------------------
    def digest(self) -> str:
        """A content digest, stable across runs and row order (sha256, hex, 16 chars)."""
        if not self._digest:
            h = hashlib.sha256()
            h.update(self.name.encode())
            h.update(repr(tuple(self.labels)).encode())
            if self.binary_positive:  # only when set, so digests of binary datasets do not move
                h.update(repr(tuple(self.binary_positive)).encode())
            if self.split_spec:  # likewise only when splits were made
                h.update(self.split_spec.encode())
            for frame, keys in (
                (self.items, ["task"]),
                (self.annotations, ["task", "worker"]),
                (self.workers, ["worker"]),
            ):
                if frame is None:
                    h.update(b"<none>")
                    continue
                canonical = frame[sorted(frame.columns)].sort_values(keys, kind="stable")
                h.update(",".join(canonical.columns).encode())
                row_hashes = pd.util.hash_pandas_object(canonical.astype(str), index=False)
                h.update(np.ascontiguousarray(row_hashes.to_numpy()).tobytes())
            self._digest.append(h.hexdigest()[:16])
        return self._digest[0]

    def summary(self) -> dict[str, object]:
        """Counts a person checks first: items, judgements and raters per split, judgements per
        item, the label distribution (declared order) and per-slice item counts."""
        per_item = self.annotations.groupby("task").size()
        split_of = self.items.set_index("task")["split"]
        judgement_split = self.annotations["task"].map(split_of)
        order = [s for s in SPLITS if (self.items["split"] == s).any()]
        order += sorted(set(self.items["split"]) - set(order))
        counts = self.annotations["label"].value_counts()
        total = max(len(self.annotations), 1)
        return {
            "items": len(self.items),
            "items_per_split": {s: int((self.items["split"] == s).sum()) for s in order},
            "judgements": len(self.annotations),
            "judgements_per_split": {s: int((judgement_split == s).sum()) for s in order},
            "raters": int(self.annotations["worker"].nunique()),
            "raters_per_split": {
                s: int(self.annotations.loc[judgement_split == s, "worker"].nunique()) for s in order
            },
            "judgements_per_item_mean": float(per_item.mean()) if len(per_item) else 0.0,
            "judgements_per_item_min": int(per_item.min()) if len(per_item) else 0,
            "judgements_per_item_max": int(per_item.max()) if len(per_item) else 0,
            "label_counts": {_plain(lab): int(counts.get(lab, 0)) for lab in self.labels},
            "label_shares": {_plain(k): float(v) / total for k, v in counts.items()},
            "slices": {
                col: {_plain(k): int(v) for k, v in self.items[col].value_counts(dropna=False).items()}
                for col in self.slice_columns
                if col in self.items
            },
        }
