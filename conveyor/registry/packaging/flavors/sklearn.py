"""The ``sklearn`` flavor: scikit-learn estimators and Pipelines, stored with skops.

skops rebuilds objects from a JSON schema instead of unpickling them, and refuses any
type it does not trust unless the caller names it. Conveyor names, on top of skops's
own defaults, only the types in ``SAFE_TYPES`` plus the caller's ``trusted_types``;
it never passes ``trusted=True``. Anything else in a file (a custom transformer, a
third-party estimator, a tree) makes loading fail with the list of types to review.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from conveyor.errors import ValidationError
from conveyor.registry.packaging.flavors.base import (
    Loaded,
    LoadRequest,
    SaveRequest,
    Stored,
    class_path,
    library_versions,
    loaded_module,
    method,
    reading,
    require,
)
from conveyor.registry.packaging.manifest import Manifest

FILE = "model.skops"

# Types skops 0.16 flags in common fitted estimators although rebuilding them runs no
# code from the file and creates no native structure indexed without bounds checks.
# Deliberately absent: sklearn.tree._tree.Tree (every forest and gradient boosting),
# HistGradientBoosting's TreePredictor and KDTree/BallTree (neighbors), whose node
# arrays scikit-learn indexes unchecked, so a crafted file can crash the process at
# predict time (skops distrusts the trees for that reason); scipy's BSpline
# (SplineTransformer), evaluated by compiled code from the stored knots; and every
# type outside scikit-learn and numpy. Callers add those with ``trusted_types``.
SAFE_TYPES = frozenset(
    {
        "numpy.dtype",  # dtype attributes (SimpleImputer, KBinsDiscretizer); rebuilt from an empty .npy
        "sklearn.utils._bunch.Bunch",  # a dict of fitted estimators (VotingClassifier, StackingClassifier)
        "sklearn.calibration._CalibratedClassifier",  # plain-Python parts of CalibratedClassifierCV
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # MLP solver state, used only to refit
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


# Refused by default because scikit-learn indexes their node arrays without bounds checks.
_NODE_ARRAY_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
    }
)


_OBJECT_ID = re.compile(rb'"__id__": (\d+)|"(\d+)\.npy"')
_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_skops(data: bytes) -> bytes:
    """The same skops file with its object ids (memory addresses) renumbered by first use
    and fixed entry timestamps, so one fitted model always gives the same bytes and a
    reproduced run can be checked file for file."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = source.read("schema.json")
        ids = list(dict.fromkeys(m.group(1) or m.group(2) for m in _OBJECT_ID.finditer(schema)))
        numbering = {old: str(i + 1).encode() for i, old in enumerate(ids)}
        pattern = re.compile(rb"\b(" + b"|".join(map(re.escape, ids)) + rb")\b") if ids else None

        def renumber(text: bytes) -> bytes:
            return pattern.sub(lambda m: numbering[m.group(1)], text) if pattern else text

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as target:
            for name in sorted(source.namelist(), key=lambda n: renumber(n.encode())):
                content = source.read(name)
                target.writestr(zipfile.ZipInfo(renumber(name.encode()).decode(), _EPOCH),
                                renumber(content) if name == "schema.json" else content)
    return buffer.getvalue()


def _refusal(found: list[str], trusted: frozenset[str]) -> ValidationError:
    """The error naming the types of a file that nobody trusted, and how to trust them."""
    refused = [name for name in found if name not in trusted]
    listed = ", ".join(repr(name) for name in refused)
    why = (
        " (scikit-learn reads tree and neighbor node arrays without bounds checks, "
        "so a crafted file could crash the process)"
        if _NODE_ARRAY_TYPES.intersection(refused)
        else ""
    )
    return ValidationError(
        f"model file {FILE!r} contains types Conveyor does not trust: {listed}{why}; "
        f"if you trust the source of this model, pass trusted_types=[{listed}]",
        field="trusted_types",
    )


class SklearnFlavor:
    """Any ``sklearn.base.BaseEstimator``, written with ``skops.io.dump``."""

    name = "sklearn"
    unsafe = False
    accepts_files = False

    def handles(self, model: Any) -> bool:
        """True for scikit-learn estimators, Pipelines and their subclasses."""
        base = loaded_module("sklearn.base")
        return base is not None and isinstance(model, base.BaseEstimator)

    def save(self, model: Any, folder: Path, request: SaveRequest) -> Stored:
        """Dump the estimator with skops and record the types a loader must trust."""
        sio = require("skops.io")
        try:
            (folder / FILE).write_bytes(canonical_skops(sio.dumps(model)))
        except Exception as exc:
            raise ValidationError(
                f"skops cannot store {class_path(model)}: {str(exc).splitlines()[0]}; "
                "if you trust everyone who will load it, pass allow_pickle=True and flavor='pickle'",
                field="model",
            ) from exc
        untrusted = [name for name in sio.get_untrusted_types(file=folder / FILE) if name not in SAFE_TYPES]
        return Stored(
            estimator=class_path(model),
            libraries=library_versions("scikit-learn", "skops"),
            untrusted_types=untrusted,
        )

    def load(self, folder: Path, manifest: Manifest, request: LoadRequest) -> Loaded:
        """Load with skops (one parse), trusting skops's defaults, ``SAFE_TYPES`` and the caller's types.

        Raises:
            ValidationError: the file holds types neither Conveyor nor the caller trusts.
        """
        sio = require("skops.io")
        path = folder / FILE
        trusted = SAFE_TYPES.union(request.trusted_types)
        with reading(manifest, "scikit-learn", FILE):
            try:
                model = sio.load(path, trusted=sorted(trusted))
            except sio.exceptions.UntrustedTypesFoundException:
                raise _refusal(sio.get_untrusted_types(file=path), trusted) from None
        return Loaded(native=model, predict=model.predict, predict_proba=method(model, "predict_proba"))


FLAVOR = SklearnFlavor()
