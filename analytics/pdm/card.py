"""Model cards: what a saved model is, how it was trained, and how well it did on held-out runs.

One JSON file per equipment type next to its joblib model (``<TYPE>.card.json``), written at
training time and read back by the daemon for ``model_source`` and by people auditing a model.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

MODEL_VERSION = "1.0"
CARD_SUFFIX = ".card.json"
MODEL_SUFFIX = ".joblib"


def data_sha256(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of the training data (arrays in order, as contiguous float64/int64 bytes)."""
    digest = hashlib.sha256()
    for array in arrays:
        arr = np.ascontiguousarray(array)
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved model loads and behaves the same."""
    import sklearn  # here, not at the top: reading a card must not load scikit-learn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


def utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def write_card(card: dict[str, Any], path: Path) -> None:
    """Write a card as indented JSON (atomically: a reader never sees half a card)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_card(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def model_source(card: dict[str, Any]) -> str:
    """The API's ``model_source``: ``"<TYPE> v<version> (<card date>)"``."""
    return f"{card['equipment_type']} v{card['version']} ({card['created'][:10]})"
