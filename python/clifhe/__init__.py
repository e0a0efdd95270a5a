"""clifhe: privacy-preserving classification of 3D medical scans (CKKS on Cl(3,0) features).

A thin layer over the Rust library that the ``host-eval`` command line is built on: every
function here calls the same library function as the corresponding ``host-eval`` subcommand
(named in its docstring) and writes the same files. Errors are raised as subclasses of
:class:`ClifheError`.

Volumes are numpy arrays indexed ``volume[x, y, z]`` (the first axis is x, the fastest-varying
axis of the Rust ``Volume`` and of NIfTI files; ``nibabel``'s ``get_fdata()`` has this order),
with ``spacing_mm = (sx, sy, sz)``.  A C-ordered array from a DICOM stack, ``stack[z, y, x]``,
must be transposed first (``stack.T``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _clifhe
from ._clifhe import (
    BudgetExhausted,
    ClifheError,
    FileError,
    InputError,
    InternalError,
    KeyExists,
    KeyMismatch,
    ProtocolError,
    ServiceError,
    MODEL_FORMAT_VERSION,
    OLDEST_READABLE_MODEL_FORMAT_VERSION,
)

__version__: str = _clifhe.__version__

PathLike = Union[str, "os.PathLike[str]"]
#: A preprocessing pipeline: a Model, a preset name, a JSON file path, or a dict.
PipelineLike = Union["Model", str, "os.PathLike[str]", Dict[str, Any], None]

#: Names of the 8 feature components (Cl(3,0) basis order).
COMPONENTS: Tuple[str, ...] = tuple(_clifhe.components())

#: Statistical security of the output flood, as ``host-eval``'s default.
DEFAULT_STATISTICAL_SECURITY = 30

__all__ = [
    "BudgetExhausted", "ClifheError", "FileError", "InputError", "InternalError", "KeyExists",
    "KeyMismatch", "ProtocolError", "ServiceError", "Model", "EquivariantModel", "Client", "COMPONENTS",
    "MODEL_FORMAT_VERSION", "OLDEST_READABLE_MODEL_FORMAT_VERSION", "features", "load_scan",
    "phantom", "scan_features", "default_intensity_scale", "feature_rows", "keygen", "evalkeys", "profile",
    "encrypt", "infer", "release", "predict", "train", "presets",
    "device_enroll", "device_encrypt", "device_record", "infer_devices",
]


def _path(p: PathLike) -> str:
    return os.fspath(p)


def _pipeline_arg(pipeline: "PipelineLike") -> Optional[str]:
    if pipeline is None:
        return None
    if isinstance(pipeline, Model):
        text = pipeline.preprocessing
        if text is None:
            raise InputError("the model records no preprocessing pipeline (model format 1 or 2)")
        return text
    if isinstance(pipeline, dict):
        return json.dumps(pipeline)
    return _path(pipeline)


def features(
    volume: np.ndarray,
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
    intensity_scale: float = 1.0,
    pipeline: "PipelineLike" = None,
) -> np.ndarray:
    """The 8 multivector features of a 3D volume, shape ``(8,)``, float64.

    ``volume[x, y, z]`` (see the module docstring for the axis order), any real dtype: float64
    and integer voxels are converted to float32, as every scan loader of ``host-eval`` stores
    them. ``pipeline`` is the scan preprocessing (docs/preprocessing.md): a :class:`Model`
    (the pipeline it records), a preset name (``"medmnist"``, ``"raw"``, ``"ct"``, ``"mr"``), a
    pipeline JSON file's path, or the pipeline as a dict. Without one, intensities are only
    divided by ``intensity_scale``. Calls the function the command line's ``encrypt``,
    ``predict`` and ``features`` use on a loaded scan (``host_eval::cli::scan::volume_features``),
    so the result is bit for bit the same.

    Raises :class:`InputError` for a volume that is not 3D, empty, or whose features are not
    finite (NaN or infinite voxels).
    """
    a = np.asarray(volume)
    if a.ndim != 3:
        raise InputError(f"a volume must be 3D (volume[x, y, z]); got {a.ndim} dimension(s)")
    if a.dtype == np.float64:
        fn = _clifhe.features_f64
    else:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
            raise InputError(f"voxels must be real numbers; got dtype {a.dtype}")
        a = a.astype(np.float32, copy=False)
        fn = _clifhe.features_f32
    s = tuple(float(v) for v in spacing_mm)
    if len(s) != 3:
        raise InputError(f"spacing_mm needs 3 values (sx, sy, sz); got {len(s)}")
    return fn(a, s, float(intensity_scale), _pipeline_arg(pipeline))


def load_scan(path: PathLike) -> Tuple[np.ndarray, Tuple[float, float, float]]:
    """Loads a scan with ``host-eval``'s loaders: ``(volume[x, y, z] as float32, spacing_mm)``.

    Accepts what ``host-eval encrypt --input`` accepts for one scan: NIfTI (``.nii``,
    ``.nii.gz``, ``.hdr``/``.img``), DICOM files and series directories, MedMNIST samples
    ``file.npz#split:index`` and raw volumes ``file.raw#XxYxZ:dtype[:SXxSYxSZ]``.
    """
    return _clifhe.load_scan(_path(path))


def phantom(
    label: int, index: int, seed: int = 1, max_tilt_deg: float = 0.0
) -> Tuple[np.ndarray, Tuple[float, float, float]]:
    """Patient ``index`` of class ``label`` (0 healthy, 1 benign, 2 malignant) of the built-in
    phantom dataset of ``seed`` (what ``host-eval train`` and ``demo`` use without
    ``--dataset``): ``(volume[x, y, z] float32, spacing_mm)``. ``max_tilt_deg`` turns the whole
    patient about a random axis by up to that angle (``--tilt``; 0: upright)."""
    return _clifhe.phantom(int(label), int(index), int(seed), float(max_tilt_deg))


def scan_features(spec: PathLike, pipeline: "PipelineLike" = None) -> np.ndarray:
    """Features of one scan exactly as ``host-eval features --input SPEC`` computes them: its
    loader, then ``pipeline`` (as in :func:`features`); without one, the rule of models that
    record none (:func:`default_intensity_scale`)."""
    return _clifhe.scan_features(_path(spec), _pipeline_arg(pipeline))


def default_intensity_scale(spec: PathLike) -> float:
    """The intensity divisor ``host-eval`` uses for a source: 255 for ``.npz``, else 1."""
    return _clifhe.default_intensity_scale(_path(spec))


def feature_rows(x: Any) -> np.ndarray:
    """Features as a C-contiguous float64 array of shape ``(n, 8)`` (one row ``(8,)`` is
    accepted). Raises :class:`InputError` for any other shape."""
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != 8:
        raise InputError(f"features must have shape (8,) or (n, 8); got {np.shape(x)}")
    return a


class _ModelFile:
    """What both model classes share: a validated model file (schemas in
    docs/model-format.md) behind the native class ``_native``."""

    __slots__ = ("_inner",)
    _native: Any = None

    def __init__(self, inner: Any) -> None:
        if not isinstance(inner, self._native):
            name = type(self).__name__
            raise TypeError(f"use {name}.load(path) or {name}.from_json(text)")
        self._inner = inner

    @classmethod
    def load(cls, path: PathLike) -> Any:
        """Reads and validates a model file. Raises :class:`InputError` for a bad model (the
        other architecture's file among them) and :class:`FileError` for an unreadable file."""
        return cls(cls._native.load(_path(path)))

    @classmethod
    def from_json(cls, text: str) -> Any:
        """Parses and validates a model document (JSON text)."""
        return cls(cls._native.from_json(text))

    def to_json(self) -> str:
        """The model document, as ``host-eval train`` writes it."""
        return self._inner.to_json()

    def save(self, path: PathLike) -> None:
        """Writes the model file (atomically)."""
        self._inner.save(_path(path))

    @property
    def classes(self) -> int:
        return self._inner.classes

    @property
    def labels(self) -> List[str]:
        """Class names, index = class."""
        return self._inner.labels

    @property
    def preprocessing(self) -> Optional[str]:
        """The scan preprocessing pipeline the model records, as JSON text (``None`` for a
        model file that records none). :func:`features` accepts a :class:`Model` itself to
        apply it; :meth:`EquivariantModel.channels` applies it."""
        return self._inner.preprocessing

    def __repr__(self) -> str:
        return repr(self._inner)


class Model(_ModelFile):
    """A trained GNN model: the model file of ``host-eval train`` (schema in
    docs/model-format.md), validated on load. Its plaintext forward pass is the one
    ``host-eval predict`` runs, the reference the encrypted scores are checked against."""

    __slots__ = ()
    _native = _clifhe.Model

    def predict(self, features: Any) -> np.ndarray:
        """Class scores: shape ``(classes,)`` for one row of 8 features, ``(n, classes)`` for
        rows ``(n, 8)``. Raises :class:`InputError` for another shape or a non-finite value."""
        rows = feature_rows(features)
        s = self._inner.scores(rows)
        return s[0] if np.ndim(features) == 1 else s

    def classify(self, features: Any) -> np.ndarray:
        """The predicted class (argmax of the scores) of each row, as int64."""
        return np.asarray(self._inner.classify(feature_rows(features)), dtype=np.int64)

    def in_box(self, features: Any) -> np.ndarray:
        """Whether each row lies in the model's public input box (outside it the scores are
        extrapolated, and ``encrypt`` clamps the features into it)."""
        return np.asarray(self._inner.in_box(feature_rows(features)), dtype=bool)

    def max_abs_intermediate(self, features: Any) -> float:
        """Largest |value| the encrypted evaluation materialises on these rows."""
        return self._inner.max_abs_intermediate(feature_rows(features))

    @property
    def topology(self) -> List[int]:
        """``[1, m_1, ..., m_L, classes]``."""
        return self._inner.topology

    @property
    def depth(self) -> int:
        """Multiplicative depth of the encrypted evaluation."""
        return self._inner.depth

    @property
    def input_box(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(center, half_width)`` of the public input box, each shape ``(8,)``."""
        c, h = self._inner.input_box
        return np.asarray(c), np.asarray(h)


class EquivariantModel(_ModelFile):
    """A trained rotation-invariant model: the model file of ``host-eval train --arch
    equivariant`` (a Clifford group equivariant network on K multivector channels per scan:
    intensity shells, principal axes and the interior depth), validated on load. Its scores do not change when the
    channels are rotated (each grade as its grade: vectors as vectors, bivectors as bivectors).

    Channels of one scan have shape ``(K, 8)`` (:attr:`channel_count` rows, Cl(3,0) basis order
    :data:`COMPONENTS`); :meth:`predict` and :meth:`classify` take one ``(K, 8)`` array or a
    stack ``(n, K, 8)``. :func:`predict` (``host-eval predict``) also reads these model files."""

    __slots__ = ()
    _native = _clifhe.EquivariantModel

    def channels(self, volume: np.ndarray, spacing_mm: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
        """The channels of a volume ``volume[x, y, z]``, shape ``(K, 8)``, through the
        preprocessing the model records (voxels converted to float32, as the scan loaders
        store them): the function ``host-eval predict`` uses."""
        a = np.asarray(volume)
        if a.ndim != 3:
            raise InputError(f"a volume must be 3D (volume[x, y, z]); got {a.ndim} dimension(s)")
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
            raise InputError(f"voxels must be real numbers; got dtype {a.dtype}")
        s = tuple(float(v) for v in spacing_mm)
        if len(s) != 3:
            raise InputError(f"spacing_mm needs 3 values (sx, sy, sz); got {len(s)}")
        return self._inner.channels_f32(a.astype(np.float32, copy=False), s)

    def scan_channels(self, spec: PathLike) -> np.ndarray:
        """The channels of one scan, shape ``(K, 8)``, loaded as ``host-eval predict --input
        SPEC`` loads it (NIfTI, DICOM, ``file.npz#split:index``, raw volumes)."""
        return self._inner.scan_channels(_path(spec))

    def _stack(self, channels: Any) -> np.ndarray:
        a = np.ascontiguousarray(np.asarray(channels, dtype=np.float64))
        if a.ndim == 2:
            a = a.reshape(1, *a.shape)
        if a.ndim != 3:
            raise InputError(f"channels must have shape (K, 8) or (n, K, 8); got {np.shape(channels)}")
        return a

    def predict(self, channels: Any) -> np.ndarray:
        """Class scores: shape ``(classes,)`` for one ``(K, 8)`` array, ``(n, classes)`` for
        ``(n, K, 8)``. Raises :class:`InputError` for another shape or a non-finite value."""
        s = self._inner.scores(self._stack(channels))
        return s[0] if np.ndim(channels) == 2 else s

    def classify(self, channels: Any) -> np.ndarray:
        """The predicted class (argmax of the scores) of each patient, as int64."""
        return np.asarray(self._inner.classify(self._stack(channels)), dtype=np.int64)

    def in_domain(self, channels: Any) -> np.ndarray:
        """Whether each patient's channels lie in the model's recorded public input domain (per
        channel and grade a norm bound from its training scans; the encrypted path clamps into
        it). All true for a model file that records none."""
        return np.asarray(self._inner.in_domain(self._stack(channels)), dtype=bool)

    @property
    def hidden(self) -> List[int]:
        """Hidden channels per layer (``[8]`` for the circuit-private network)."""
        return self._inner.hidden

    @property
    def channel_count(self) -> int:
        """K: the intensity shells, then the three principal axes and the interior depth channel
        if the model reads them."""
        return self._inner.channel_count

    @property
    def shells(self) -> int:
        return self._inner.shells

    @property
    def principal_axes(self) -> bool:
        return self._inner.principal_axes

    @property
    def depth(self) -> bool:
        """Whether the model reads the interior depth channel (how deep inside the object its
        voxels lie: rms depth and depth-weighted centroid)."""
        return self._inner.depth

    @property
    def shell_weighting(self) -> str:
        """"hard" (a voxel counts wholly in the shell its intensity falls in) or "tent" (split
        linearly between the two nearest shell centres, so the channels stay continuous when a
        scan is resampled)."""
        return self._inner.shell_weighting



def keygen(
    keys_dir: PathLike,
    preset: str = "private-n15",
    *,
    force: bool = False,
    rotate: bool = False,
    leakage_budget_bits: Optional[int] = None,
) -> Dict[str, Any]:
    """Hospital: a new key set in ``keys_dir`` (``host-eval keygen``). The secret key never
    leaves it; ``public.bundle`` is what the vendor receives. Returns the ``--json`` report."""
    return json.loads(_clifhe.keygen(_path(keys_dir), preset, force, rotate, leakage_budget_bits))


def evalkeys(
    keys_dir: PathLike,
    *,
    relin_only: bool = True,
    merge_patients: Optional[int] = None,
    profile: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Hospital: evaluation keys for the vendor (``host-eval evalkeys``); rewrites
    ``public.bundle``. ``relin_only`` (the default) is all a blade-major batch needs;
    ``profile``: a block-layout profile, whose rotation keys are made too."""
    return json.loads(
        _clifhe.evalkeys(
            _path(keys_dir),
            relin_only and merge_patients is None,
            merge_patients,
            None if profile is None else _path(profile),
        )
    )


def profile(
    model: PathLike, keys: PathLike, out: PathLike, *, no_flooding: bool = False, layout: str = "blade-major"
) -> Dict[str, Any]:
    """Vendor: the model's public input profile for the hospital's key set (``host-eval
    profile``), written to ``out``; ``keys`` is a ``public.bundle`` or a key set directory.
    ``layout``: ``"blade-major"`` or, for a circuit-private equivariant model, ``"blocks"`` (a
    few patients at low latency; the hospital then runs ``evalkeys(profile=...)``)."""
    return json.loads(_clifhe.profile(_path(model), _path(keys), _path(out), no_flooding, layout))


def encrypt(
    keys_dir: PathLike,
    profile: PathLike,
    features: Any = None,
    out: Optional[PathLike] = None,
    *,
    inputs: Optional[Sequence[PathLike]] = None,
    channels: Any = None,
    mode: str = "pk",
) -> Dict[str, Any]:
    """Hospital: a batch for a profile (``host-eval encrypt --profile``), written to ``out``
    with its record ``out.record.json`` (what :func:`release` trusts).

    Give one of ``features`` (rows of 8, shape ``(n, 8)``, e.g. from :func:`features`; a GNN's
    profile), ``channels`` (shape ``(n, K, 8)``, e.g. from :meth:`EquivariantModel.channels`;
    an equivariant model's profile) or ``inputs`` (scan paths, dataset samples or features
    files, as ``--input``; either profile). ``mode``: ``"pk"`` (public key) or ``"seeded"``
    (secret key, half the size). Returns the ``--json`` summary (never a feature value);
    ``out_of_box`` lists patients outside the model's box or domain.
    """
    if out is None:
        raise InputError("encrypt needs out= (the batch file to write)")
    if sum(x is not None for x in (features, inputs, channels)) != 1:
        raise InputError("give exactly one of features=, channels= and inputs=")
    if channels is not None:
        arr = np.ascontiguousarray(np.asarray(channels, dtype=np.float64))
        if arr.ndim == 2:
            arr = arr[None, :, :]
        if arr.ndim != 3 or arr.shape[2] != 8:
            raise InputError(f"channels must have shape (n, K, 8); got {arr.shape}")
        text = _clifhe.encrypt_channels(_path(keys_dir), _path(profile), arr, _path(out), mode)
    elif inputs is not None:
        text = _clifhe.encrypt_inputs(_path(keys_dir), _path(profile), [_path(i) for i in inputs], _path(out), mode)
    else:
        text = _clifhe.encrypt_features(_path(keys_dir), _path(profile), feature_rows(features), _path(out), mode)
    return json.loads(text)


def infer(
    model: PathLike,
    keys: PathLike,
    batch: PathLike,
    out: PathLike,
    *,
    statistical_security: int = DEFAULT_STATISTICAL_SECURITY,
    no_flooding: bool = False,
    patients: Optional[int] = None,
) -> Dict[str, Any]:
    """Vendor: encrypted inference on a batch (``host-eval infer``): one score ciphertext per
    class and ``scores.json`` in ``out``, flooded (circuit-private) unless ``no_flooding``.
    Returns the scores manifest."""
    return json.loads(
        _clifhe.infer(_path(model), _path(keys), _path(batch), _path(out), statistical_security, no_flooding, patients)
    )


def release(
    keys_dir: PathLike,
    scores_dir: PathLike,
    record: PathLike,
    *,
    statistical_security: int = DEFAULT_STATISTICAL_SECURITY,
    rounded: Optional[int] = None,
) -> Dict[str, Any]:
    """Hospital: releases the vendor's results for the batch of ``record`` (``host-eval
    release``): flooded decryption, argmax per patient (and, with ``rounded``, the scores
    rounded to that many decimals, 1 to 6), charged to the key set's leakage ledger first.

    Returns ``{"predictions": [{"patient", "class", "label", "out_of_box"[, "scores"]}],
    "labels", "cost_bits", "remaining_bits", "budget_bits"}``. Raises :class:`BudgetExhausted`
    when the budget cannot pay for it (rotate the keys: ``keygen(..., rotate=True)``). There is
    no raw decryption of the vendor's output in this package.
    """
    return json.loads(
        _clifhe.release(_path(keys_dir), _path(scores_dir), _path(record), statistical_security, rounded)
    )


def device_enroll(keys_dir: PathLike, profile: PathLike, out: PathLike, switch_key: PathLike) -> Dict[str, Any]:
    """Hospital: enrols one device for the vendor's circuit-private ``profile``
    (``host-eval device-enroll``): a fresh device key, its firmware bundle in the new directory
    ``out`` (``device-key.seed`` is the device's SECRET seed, mode 0600) and the switching key
    the vendor needs in the new file ``switch_key``. Returns the report (manifest, sizes)."""
    return json.loads(_clifhe.device_enroll(_path(keys_dir), _path(profile), _path(out), _path(switch_key)))


def device_encrypt(bundle: PathLike, features: Any, out: PathLike) -> Dict[str, Any]:
    """Hospital: the enrolled device's encryption path (the firmware's code) run on the host
    for feature rows ``(n, 8)``: one ciphertext file per patient in the new directory ``out``.
    Returns ``{"files", "ciphertext_bytes", "out_of_box"}``."""
    return json.loads(_clifhe.device_encrypt(_path(bundle), feature_rows(features), _path(out)))


def device_record(keys_dir: PathLike, profile: PathLike, ciphertexts: Sequence[PathLike], out: PathLike) -> Dict[str, Any]:
    """Hospital: the batch record of the ciphertexts a device sent (``host-eval device-record``),
    for :func:`release`. Returns the record."""
    return json.loads(_clifhe.device_record(_path(keys_dir), _path(profile), [_path(c) for c in ciphertexts], _path(out)))


def infer_devices(
    model: PathLike,
    keys: PathLike,
    ciphertexts: Sequence[PathLike],
    switch_key: PathLike,
    out: PathLike,
    *,
    statistical_security: int = DEFAULT_STATISTICAL_SECURITY,
) -> Dict[str, Any]:
    """Vendor: circuit-private inference on an enrolled device's ciphertexts (``host-eval infer
    --device-ciphertexts ... --device-key SWITCH_KEY``). Returns the scores manifest."""
    return json.loads(
        _clifhe.infer_devices(
            _path(model), _path(keys), [_path(c) for c in ciphertexts], _path(switch_key), _path(out), statistical_security
        )
    )


def predict(model: PathLike, inputs: Sequence[PathLike]) -> Dict[str, Any]:
    """Vendor: ``host-eval predict --json`` on inputs (scans, samples, features files): the
    plaintext model's scores, argmax and out-of-box flag per patient. For arrays use
    :meth:`Model.scores`."""
    return json.loads(_clifhe.predict_inputs(_path(model), [_path(i) for i in inputs]))


def train(
    out: PathLike,
    *,
    dataset: Optional[PathLike] = None,
    per_class: int = 400,
    seed: int = 1,
    scans: Optional[PathLike] = None,
    features: Optional[PathLike] = None,
    labels: Optional[PathLike] = None,
    pipeline: "PipelineLike" = None,
    arch: str = "gnn",
    max_tilt_deg: float = 0.0,
    circuit_private: bool = False,
) -> Dict[str, Any]:
    """Vendor: ``host-eval train``; writes the model file ``out`` and returns the training
    summary. One source: a MedMNIST ``.npz`` (``dataset``), a folder of labelled scans
    (``scans``, ``labels`` CSV and their ``pipeline``), a features CSV with a labels CSV
    (``features``, ``labels``, optionally the ``pipeline`` that made them), or by default the
    built-in phantoms (tilted by up to ``max_tilt_deg``, ``--tilt``). The model records the
    pipeline (docs/preprocessing.md). ``arch`` is ``--arch``: ``"gnn"`` (the 8-feature network
    that ``infer`` evaluates, load it with :class:`Model`) or ``"equivariant"`` (the
    rotation-invariant network on intensity shells, principal axes and interior depth, from
    volumes only:
    phantoms or a dataset; load it with :class:`EquivariantModel`). ``circuit_private`` trains
    the equivariant network that the circuit-private encrypted evaluation fits (one layer of 8
    channels without gates, ``--circuit-private``)."""
    opt = lambda p: None if p is None else _path(p)  # noqa: E731
    return json.loads(
        _clifhe.train(
            _path(out), opt(dataset), per_class, seed, opt(scans), opt(features), opt(labels), _pipeline_arg(pipeline),
            arch, float(max_tilt_deg), bool(circuit_private),
        )
    )


def presets() -> List[Dict[str, Any]]:
    """The parameter presets and their security figures (``host-eval presets --json``)."""
    return json.loads(_clifhe.presets())


class Client:
    """The hospital's client of an inference service (``host-eval serve``):
    ``host-eval submit``, ``fetch`` and ``fetch-profile`` as methods.

    >>> c = Client("http://127.0.0.1:8080", "token")        # doctest: +SKIP
    >>> job = c.submit("keys", "batch.clhe")                 # doctest: +SKIP
    >>> c.fetch(job, "scores", timeout=600)                  # doctest: +SKIP
    """

    def __init__(self, server: str, token_file: PathLike, ca_cert: Optional[PathLike] = None) -> None:
        self._inner = _clifhe.Client(server, _path(token_file), None if ca_cert is None else _path(ca_cert))

    def submit(self, keys_dir: PathLike, batch_dir: PathLike) -> str:
        """Uploads the key set's public material if needed and submits the batch file;
        returns the job id. Raises :class:`ServiceError` if the service refuses."""
        return self._inner.submit(_path(keys_dir), _path(batch_dir))

    def status(self, job_id: str) -> Dict[str, Any]:
        """The job's state as the service reports it."""
        return json.loads(self._inner.status(job_id))

    def fetch(self, job_id: str, out_dir: PathLike, timeout: float = 600.0) -> int:
        """Waits at most ``timeout`` seconds for the job, downloads and verifies its encrypted
        scores into ``out_dir`` (for :func:`release`); returns the patient count."""
        return self._inner.fetch(job_id, _path(out_dir), float(timeout))

    def fetch_profile(self, keys_dir: PathLike, out: PathLike, *, layout: str = "blade-major") -> None:
        """The service model's input profile for the key set's preset, written to ``out``;
        ``layout="blocks"`` for an equivariant model's low-latency layout."""
        self._inner.fetch_profile(_path(keys_dir), _path(out), layout)
