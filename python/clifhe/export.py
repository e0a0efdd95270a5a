"""Export a model trained elsewhere (PyTorch, JAX, numpy) to clifhe's model format.

The model is the project's geometric-product network (docs/model-format.md): standardisation,
hidden layers of multivector weights with a quadratic activation and mean aggregation, and one
output multivector per class. A framework model of that architecture names its parameters as
follows (one ``state_dict`` entry each; any tensor with ``.detach().cpu().numpy()`` or anything
``numpy.asarray`` accepts)::

    normalisation.mean      (8,)       per-blade mean of the training features
    normalisation.std       (8,)       per-blade standard deviation (> 0)
    hidden.{l}.weight       (m_l, 8)   weight multivectors of hidden layer l = 0, 1, ...
    hidden.{l}.bias         (m_l, 8)   bias multivectors
    hidden.{l}.activation   (8,)       a_k of act(y)_k = y_k + a_k y_k^2
    output.weight           (C, 8)     one weight multivector per class
    output.bias             (C,)       scalar bias per class
    input_box.center        (8,)       optional: the public input box (else from ``features``,
    input_box.half_width    (8,)       or mean +- 8 std)

Blade order everywhere: scalar, e1, e2, e3, e12, e13, e23, e123 (:data:`clifhe.COMPONENTS`).
The document is assembled here and validated by the Rust model loader (shapes, finite values,
version), so an exported model is exactly what ``host-eval`` will evaluate.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import InputError, MODEL_FORMAT_VERSION, Model, PathLike, _clifhe, _path, feature_rows

__all__ = ["from_torch", "from_state_dict", "save_model", "to_state_dict", "DEFAULT_INPUT_BOX_MARGIN"]

#: Margin of the input box around the training features, as ``host-eval train`` uses.
DEFAULT_INPUT_BOX_MARGIN = 0.25

_HIDDEN = re.compile(r"^hidden\.(\d+)\.(weight|bias|activation)$")


def _array(name: str, v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach()
    if hasattr(v, "cpu"):
        v = v.cpu()
    if hasattr(v, "numpy") and not isinstance(v, np.ndarray):
        v = v.numpy()
    try:
        return np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"state_dict entry {name!r} is not a real array: {e}") from None


def _shaped(sd: Mapping[str, np.ndarray], name: str, shape: Tuple[Optional[int], ...]) -> np.ndarray:
    if name not in sd:
        raise InputError(f"state_dict has no entry {name!r}")
    a = sd[name]
    ok = a.ndim == len(shape) and all(want is None or got == want for got, want in zip(a.shape, shape))
    if not ok:
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise InputError(f"state_dict entry {name!r} has shape {a.shape}; expected {want}")
    return a


def _vec(a: np.ndarray) -> List[float]:
    return [float(v) for v in a]


def from_state_dict(
    state_dict: Mapping[str, Any],
    *,
    labels: Optional[Sequence[str]] = None,
    input_box: Optional[Tuple[Any, Any]] = None,
    features: Any = None,
    input_box_margin: float = DEFAULT_INPUT_BOX_MARGIN,
    preprocessing: Any = None,
) -> Model:
    """A :class:`clifhe.Model` from parameters named as in the module docstring.

    ``labels``: class names (default ``class 0``, ``class 1``, ...). ``preprocessing``: the
    scan pipeline the training features went through (a preset name such as ``"ct"``, a
    pipeline dict or JSON file, or a Model whose pipeline to copy); the hospital's scans then
    go through the same one. The public input box is
    ``input_box=(center, half_width)`` if given, else the ``input_box.*`` entries, else the
    range of ``features`` (the training features, rows of 8) widened by ``input_box_margin``
    as ``host-eval train`` does; with none of them the model falls back to mean +- 8 std.
    With ``features`` the largest intermediate on them is recorded too. Entries other than
    these names are refused (a typo would otherwise drop a layer silently).
    """
    sd = {str(k): _array(str(k), v) for k, v in state_dict.items()}
    layers = sorted({int(m.group(1)) for m in map(_HIDDEN.match, sd) if m})
    if layers != list(range(len(layers))):
        raise InputError(f"hidden layers must be numbered 0, 1, ...; found {layers}")
    known = {"normalisation.mean", "normalisation.std", "output.weight", "output.bias",
             "input_box.center", "input_box.half_width"}
    stray = sorted(k for k in sd if k not in known and not _HIDDEN.match(k))
    if stray:
        raise InputError(f"state_dict entries not in the clifhe GNN: {stray}")
    hidden = []
    for l in layers:
        w = _shaped(sd, f"hidden.{l}.weight", (None, 8))
        b = _shaped(sd, f"hidden.{l}.bias", (w.shape[0], 8))
        a = _shaped(sd, f"hidden.{l}.activation", (8,))
        hidden.append({"weights": [_vec(r) for r in w], "biases": [_vec(r) for r in b], "activation": _vec(a)})
    ow = _shaped(sd, "output.weight", (None, 8))
    classes = ow.shape[0]
    ob = _shaped(sd, "output.bias", (classes,))
    names = [f"class {c}" for c in range(classes)] if labels is None else [str(x) for x in labels]
    doc: Dict[str, Any] = {
        "format_version": MODEL_FORMAT_VERSION,
        "topology": [1] + [len(h["weights"]) for h in hidden] + [classes],
        "classes": classes,
        "label_names": names,
        "normalisation": {
            "mean": _vec(_shaped(sd, "normalisation.mean", (8,))),
            "std": _vec(_shaped(sd, "normalisation.std", (8,))),
        },
        "hidden": hidden,
        "output": {"weights": [_vec(r) for r in ow], "biases": _vec(ob)},
        "max_abs_intermediate_train": None,
    }
    rows = None if features is None else feature_rows(features)
    if input_box is not None:
        c, h = (_array("input_box", x) for x in input_box)
        doc["input_box"] = {"center": _vec(c.reshape(-1)), "half_width": _vec(h.reshape(-1))}
    elif "input_box.center" in sd or "input_box.half_width" in sd:
        doc["input_box"] = {
            "center": _vec(_shaped(sd, "input_box.center", (8,))),
            "half_width": _vec(_shaped(sd, "input_box.half_width", (8,))),
        }
    elif rows is not None:
        c, h = _clifhe.input_box_from_samples(rows, float(input_box_margin))
        doc["input_box"] = {"center": list(c), "half_width": list(h)}
    if preprocessing is not None:
        # The scan pipeline the training features went through (docs/preprocessing.md): a
        # Model (its recorded one), a preset name, a JSON file path, JSON text or a dict.
        if isinstance(preprocessing, Model):
            text = preprocessing.preprocessing
            if text is None:
                raise InputError("the model records no preprocessing pipeline")
        elif isinstance(preprocessing, dict):
            text = _clifhe.pipeline_json(json.dumps(preprocessing))
        else:
            text = _clifhe.pipeline_json(_path(preprocessing))
        doc["preprocessing"] = json.loads(text)
    model = Model.from_json(json.dumps(doc))
    if rows is not None:
        doc["max_abs_intermediate_train"] = model.max_abs_intermediate(rows)
        model = Model.from_json(json.dumps(doc))
    return model


def from_torch(module_or_state_dict: Any, **kwargs: Any) -> Model:
    """A :class:`clifhe.Model` from a PyTorch ``nn.Module`` (its ``state_dict()``) or a state
    dict, with parameters named as in the module docstring; keyword arguments as
    :func:`from_state_dict`. torch itself is not imported: any object with ``state_dict()`` or
    any mapping of tensor-likes works."""
    sd = module_or_state_dict.state_dict() if hasattr(module_or_state_dict, "state_dict") else module_or_state_dict
    if not isinstance(sd, Mapping):
        raise InputError("from_torch needs an nn.Module or a state_dict mapping")
    return from_state_dict(sd, **kwargs)


def save_model(module_or_state_dict: Any, path: PathLike, **kwargs: Any) -> Model:
    """:func:`from_torch`, then writes the model file ``path`` (what ``host-eval infer`` and
    ``profile`` read); returns the model."""
    model = from_torch(module_or_state_dict, **kwargs)
    model.save(_path(path))
    return model


def to_state_dict(model: Model) -> Dict[str, np.ndarray]:
    """The inverse of :func:`from_state_dict`: the model's parameters as float64 arrays under
    the names above (to fine-tune a clifhe model in a framework, or to check an export)."""
    doc = json.loads(model.to_json())
    sd: Dict[str, np.ndarray] = {
        "normalisation.mean": np.array(doc["normalisation"]["mean"], dtype=np.float64),
        "normalisation.std": np.array(doc["normalisation"]["std"], dtype=np.float64),
    }
    for l, h in enumerate(doc["hidden"]):
        sd[f"hidden.{l}.weight"] = np.array(h["weights"], dtype=np.float64).reshape(-1, 8)
        sd[f"hidden.{l}.bias"] = np.array(h["biases"], dtype=np.float64).reshape(-1, 8)
        sd[f"hidden.{l}.activation"] = np.array(h["activation"], dtype=np.float64)
    sd["output.weight"] = np.array(doc["output"]["weights"], dtype=np.float64).reshape(-1, 8)
    sd["output.bias"] = np.array(doc["output"]["biases"], dtype=np.float64)
    if doc.get("input_box") is not None:
        sd["input_box.center"] = np.array(doc["input_box"]["center"], dtype=np.float64)
        sd["input_box.half_width"] = np.array(doc["input_box"]["half_width"], dtype=np.float64)
    return sd
