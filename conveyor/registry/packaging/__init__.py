"""Safe model packaging: a model folder in its library's own format, plus a manifest.

``save_model`` writes the model's files and ``conveyor-model.json`` (flavor, library
versions, the sha256 of every file, the signature, an input example).
``load_folder`` verifies every checksum before any library reads a byte, refuses
pickles unless allowed, loads scikit-learn models with skops trusting only listed
types, and returns a ``Predictor`` that checks frames against the signature.

Example:
    >>> manifest = save_model(pipeline, Path("out/model"), input_example=X.head())
    >>> predictor = load_folder(Path("out/model"))
    >>> predictor.predict(X)
"""

from conveyor.registry.packaging.loading import load_folder
from conveyor.registry.packaging.manifest import (
    MANIFEST_FILE,
    Manifest,
    ModelFile,
    read_manifest,
)
from conveyor.registry.packaging.predictor import Predictor
from conveyor.registry.packaging.python_model import PythonModel
from conveyor.registry.packaging.saving import save_model
from conveyor.registry.packaging.signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    infer_signature,
)

__all__ = [
    "MANIFEST_FILE",
    "ColumnSpec",
    "Manifest",
    "ModelFile",
    "OutputSpec",
    "Predictor",
    "PythonModel",
    "Signature",
    "infer_signature",
    "load_folder",
    "read_manifest",
    "save_model",
]
