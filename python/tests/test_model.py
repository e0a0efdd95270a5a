"""Model files and the exporter: a Rust-trained model -> state_dict of numpy arrays -> export
-> the same predictions, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clifhe
from clifhe import export


@pytest.fixture(scope="session")
def rows(model):
    vols = [clifhe.phantom(label, i) for i in range(3000, 3010) for label in range(3)]
    return np.array([clifhe.features(v, s) for v, s in vols])


def test_load_and_json_round_trip(model, model_path, rows):
    again = clifhe.Model.from_json(model.to_json())
    assert again.to_json() == model.to_json()
    assert model.topology == [1, 16, 8, 3]
    assert model.classes == 3 and model.labels == ["healthy", "benign", "malignant"]
    assert json.loads(model.to_json())["format_version"] == clifhe.MODEL_FORMAT_VERSION
    s = model.predict(rows)
    assert s.shape == (len(rows), 3)
    assert model.predict(rows[0]).shape == (3,)
    assert model.predict(rows[0]).tobytes() == s[0].tobytes()
    assert list(model.classify(rows)) == list(np.argmax(s, axis=1))
    c, h = model.input_box
    assert c.shape == (8,) and np.all(h > 0)


def test_bad_model_documents_are_input_errors(model, workdir):
    with pytest.raises(clifhe.InputError):
        clifhe.Model.from_json("{not json")
    doc = json.loads(model.to_json())
    doc["format_version"] = clifhe.MODEL_FORMAT_VERSION + 1
    with pytest.raises(clifhe.InputError, match="format_version"):
        clifhe.Model.from_json(json.dumps(doc))
    doc = json.loads(model.to_json())
    doc["hidden"][0]["weights"].pop()
    with pytest.raises(clifhe.InputError):
        clifhe.Model.from_json(json.dumps(doc))
    with pytest.raises(clifhe.FileError):
        clifhe.Model.load(workdir / "absent-model.json")
    with pytest.raises(clifhe.InputError):
        model.predict(np.ones((2, 9)))
    with pytest.raises(clifhe.InputError):
        model.predict(np.array([1, 2, 3, 4, 5, 6, 7, np.inf]))


def test_export_round_trip_is_bit_for_bit(model, rows, workdir):
    sd = export.to_state_dict(model)
    assert sd["hidden.0.weight"].shape == (16, 8) and sd["output.bias"].shape == (3,)
    # As a framework would hold them: float64 arrays, no reference to the model.
    sd = {k: np.array(v, copy=True) for k, v in sd.items()}
    back = export.from_torch(sd, labels=model.labels, preprocessing=model)
    assert back.preprocessing == model.preprocessing is not None
    assert back.predict(rows).tobytes() == model.predict(rows).tobytes()
    a, b = json.loads(back.to_json()), json.loads(model.to_json())
    a.pop("max_abs_intermediate_train"), b.pop("max_abs_intermediate_train")
    assert a == b
    saved = export.save_model(sd, workdir / "exported.json", labels=model.labels)
    assert clifhe.Model.load(workdir / "exported.json").predict(rows).tobytes() == saved.predict(rows).tobytes()


def test_export_box_from_training_features(model, rows):
    sd = export.to_state_dict(model)
    del sd["input_box.center"], sd["input_box.half_width"]
    m = export.from_state_dict(sd, features=rows)
    c, h = m.input_box
    assert np.all(rows <= c + h) and np.all(rows >= c - h)
    assert json.loads(m.to_json())["max_abs_intermediate_train"] == m.max_abs_intermediate(rows)
    # Without a box or features the model falls back to mean +- 8 std.
    assert clifhe.Model.from_json(export.from_state_dict(sd).to_json()).input_box[1][0] > 0


class TensorLike:
    """What the exporter needs from a framework tensor."""

    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float32)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a


def test_export_accepts_tensor_likes_and_validates_shapes(model, rows):
    sd = {k: TensorLike(v) for k, v in export.to_state_dict(model).items()}
    m = export.from_torch(sd)
    assert m.labels == ["class 0", "class 1", "class 2"]
    assert m.predict(rows).shape == (len(rows), 3)
    bad = dict(sd)
    bad["hidden.1.weight"] = TensorLike(np.ones((8, 7)))
    with pytest.raises(clifhe.InputError, match="hidden.1.weight"):
        export.from_torch(bad)
    bad = dict(sd)
    bad["hidden.0.bias"] = TensorLike(np.ones((15, 8)))
    with pytest.raises(clifhe.InputError, match="hidden.0.bias"):
        export.from_torch(bad)
    bad = {k: v for k, v in sd.items() if k != "output.bias"}
    with pytest.raises(clifhe.InputError, match="output.bias"):
        export.from_torch(bad)
    bad = dict(sd)
    bad["hidden.3.weight"] = sd["hidden.0.weight"]
    with pytest.raises(clifhe.InputError):
        export.from_torch(bad)
    bad = dict(sd)
    bad["normalisation.std"] = TensorLike(np.zeros(8))
    with pytest.raises(clifhe.InputError):
        export.from_torch(bad)
    with pytest.raises(clifhe.InputError, match="not in the clifhe GNN"):
        export.from_torch({**sd, "extra.weight": TensorLike(np.ones(3))})


def test_export_from_a_real_torch_module(model, rows):
    torch = pytest.importorskip("torch")

    class Gnn(torch.nn.Module):
        def __init__(self, sd):
            super().__init__()
            self.normalisation = torch.nn.Module()
            self.normalisation.register_buffer("mean", torch.tensor(sd["normalisation.mean"]))
            self.normalisation.register_buffer("std", torch.tensor(sd["normalisation.std"]))
            self.hidden = torch.nn.ModuleList()
            for l in range(2):
                layer = torch.nn.Module()
                for name in ("weight", "bias", "activation"):
                    setattr(layer, name, torch.nn.Parameter(torch.tensor(sd[f"hidden.{l}.{name}"])))
                self.hidden.append(layer)
            self.output = torch.nn.Module()
            self.output.weight = torch.nn.Parameter(torch.tensor(sd["output.weight"]))
            self.output.bias = torch.nn.Parameter(torch.tensor(sd["output.bias"]))

    m = export.from_torch(Gnn(export.to_state_dict(model)), features=rows, labels=model.labels)
    assert m.predict(rows).tobytes() == model.predict(rows).tobytes()


def test_exception_hierarchy():
    for e in (clifhe.InputError, clifhe.FileError, clifhe.ProtocolError, clifhe.KeyExists,
              clifhe.BudgetExhausted, clifhe.ServiceError, clifhe.InternalError):
        assert issubclass(e, clifhe.ClifheError)
    assert issubclass(clifhe.KeyMismatch, clifhe.ProtocolError)
    assert issubclass(clifhe.ClifheError, Exception)
