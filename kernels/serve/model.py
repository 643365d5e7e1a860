"""The served model, how it is trained and saved, and the registry of its versions.

The model is a real one: a 64 -> 32 -> 10 MLP (``models.mlp``, 2,410 parameters) trained for
a few hundred full-batch Adam steps on scikit-learn's digits (1,797 real 8 x 8 images), so a
wrong server gives visibly wrong classes, not a rounding difference. Clients send raw pixels
(0..16); :meth:`ServedModel.predict` scales them to [0, 1] first, exactly as in training,
which is the step a careless server forgets (the ``raw_pixels`` mutants).

Files are ``torch.save({"config": {...}, "state_dict": ...})`` and are read back with
``torch.load(weights_only=True)``: a server never unpickles arbitrary objects.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from kernels.serve.limits import N_FEATURES, PIXEL_MAX, ServeError
from models.mlp import MLP, MLPConfig


class ServedModel:
    """An MLP with its input scaling; ``predict`` is what every server calls.

    Args:
        mlp: the trained network (put in eval mode here).
    """

    def __init__(self, mlp: MLP):
        self.mlp = mlp.eval()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels (N, 64) in 0..16 -> (N, 64) in [0, 1], the scale the MLP was trained on."""
        return x / PIXEL_MAX

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classes (N,) int64 and logits (N, 10) float32 of raw pixels ``x`` (N, 64) float32."""
        logits = self.mlp(self.preprocess(x))
        return logits.argmax(dim=1), logits

    def save(self, path: str | Path) -> Path:
        """Write config and weights to ``path`` (a ``.pt`` file); returns the path."""
        path = Path(path)
        cfg = dataclasses.asdict(self.mlp.config)
        cfg["hidden"] = list(cfg["hidden"])
        torch.save({"config": cfg, "state_dict": self.mlp.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ServedModel:
        """Read a file written by :meth:`save` (``weights_only=True``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a model saved by :meth:`save`.
        """
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or set(blob) != {"config", "state_dict"}:
            raise ValueError(f"{path}: not a served model (expected keys config, state_dict)")
        cfg = dict(blob["config"])
        cfg["hidden"] = tuple(cfg["hidden"])
        mlp = MLP(MLPConfig(**cfg))
        mlp.load_state_dict(blob["state_dict"])
        return cls(mlp)


def digits_data() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn digits as raw pixels (1797, 64) float32 in 0..16 and labels (1797,) int64."""
    from harness.data import load_digits_images

    d = load_digits_images()
    return d.images.reshape(-1, N_FEATURES).float(), d.labels  # (1797, 8, 8) -> (1797, 64)


def train_digits(seed: int, *, steps: int = 150, hidden: tuple[int, ...] = (32,)) -> tuple[ServedModel, float]:
    """Train a digits MLP with full-batch Adam (lr 1e-2); returns it and its training accuracy.

    Different seeds give different weights, which is how the registry tests tell versions apart.
    """
    x, y = digits_data()
    torch.manual_seed(seed)
    model = ServedModel(MLP(MLPConfig(in_features=N_FEATURES, hidden=hidden, out_features=10)))
    model.mlp.train()
    opt = torch.optim.Adam(model.mlp.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model.mlp(model.preprocess(x)), y).backward()
        opt.step()
    model.mlp.eval()
    acc = (model.predict(x)[0] == y).float().mean().item()
    return model, acc


class Registry:
    """Named models, each with versions and one active version; safe across request threads.

    A prediction takes one consistent snapshot ``(version, model)`` under the lock and runs
    the forward pass outside it, so swapping the active version under load never gives an
    answer from one version labelled as another.

    Args:
        store: folder holding the ``.pt`` files versions are registered from.
    """

    def __init__(self, store: str | Path):
        self.store = Path(store)
        self._lock = threading.Lock()
        self._models: dict[str, dict[str, ServedModel]] = {}
        self._active: dict[str, str] = {}
        #: model files read by this process (the "loaded once per worker" check reads it)
        self.loads = 0

    def _read(self, file: str) -> ServedModel:
        path = self.store / file
        if Path(file).name != file or not path.is_file():
            raise ServeError(422, "unknown_file", f"no model file {file!r} in the server's store; copy it there first")
        self.loads += 1
        return ServedModel.load(path)

    def register(self, name: str, version: str, file: str, *, activate: bool = False) -> None:
        """Add ``version`` of ``name`` from ``file``; the first version of a name becomes active.

        Raises:
            ServeError: 409 if the version exists, 422 if the file is not in the store.
        """
        with self._lock:
            if version in self._models.get(name, {}):
                raise ServeError(409, "version_exists", f"{name} {version} is registered; delete it first")
        model = self._read(file)  # outside the lock: reading a file must not stall predictions
        with self._lock:
            self._models.setdefault(name, {})[version] = model
            if activate or name not in self._active:
                self._active[name] = version

    def activate(self, name: str, version: str) -> None:
        """Make ``version`` the active one. Raises ServeError 404 for an unknown name or version."""
        with self._lock:
            self._versions(name, version)
            self._active[name] = version

    def delete(self, name: str, version: str) -> None:
        """Remove a version. Raises ServeError 404 if unknown, 409 if it is the active one."""
        with self._lock:
            versions = self._versions(name, version)
            if self._active.get(name) == version:
                raise ServeError(409, "version_active", f"{name} {version} is active; activate another version first")
            del versions[version]

    def listing(self) -> list[dict[str, Any]]:
        """``[{"name", "versions": [...], "active"}]`` sorted by name."""
        with self._lock:
            return [
                {"name": n, "versions": sorted(v), "active": self._active.get(n)}
                for n, v in sorted(self._models.items())
            ]

    def get(self, name: str, version: str | None = None) -> tuple[str, ServedModel]:
        """``(version, model)``: the given version, or the active one when None.

        Raises:
            ServeError: 404 ``unknown_model`` / ``unknown_version``.
        """
        with self._lock:
            if version is None:
                self._versions(name, None)
                version = self._active[name]
            return version, self._versions(name, version)[version]

    def _versions(self, name: str, version: str | None) -> dict[str, ServedModel]:
        if name not in self._models:
            known = ", ".join(sorted(self._models)) or "none"
            raise ServeError(404, "unknown_model", f"no model named {name!r}; known models: {known}")
        versions = self._models[name]
        if version is not None and version not in versions:
            raise ServeError(404, "unknown_version", f"{name} has no version {version!r}; it has {sorted(versions)}")
        return versions


def predict_json(registry: Registry, name: str, version: str | None, inputs: list[list[float]]) -> dict[str, Any]:
    """Run one validated request: the response body of :class:`kernels.serve.schemas.PredictResponse`."""
    used, model = registry.get(name, version)
    x = torch.tensor(inputs, dtype=torch.float32)  # (N, 64), shape already validated
    classes, logits = model.predict(x)
    return {"model": name, "version": used, "predictions": classes.tolist(), "logits": logits.tolist()}
