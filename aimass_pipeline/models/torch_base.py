"""What the torch estimators share: a seeded single-thread session, the training loop, and pickling.

A fitted estimator keeps its weights as numpy arrays plus the arguments that rebuild the network, so it
pickles without torch's own format (and skops can store it). The live nn.Module sits in ``module_`` (the
skorch name, which compression looks for); it is left out of the pickle and rebuilt on load, unless it was
swapped for one that numpy weights cannot describe (e.g. dynamically quantised), which is then kept whole.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from torch import nn

_PREDICT_BATCH = 2048
_MIN_ROWS_FOR_EARLY_STOPPING = 20


@contextmanager
def torch_session(seed: int | None) -> Iterator[None]:
    """One thread and deterministic kernels for the duration, then the caller's settings come back.

    A private RNG fork keeps seeding from disturbing anyone else's torch randomness in the process.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _plain_weights(module: nn.Module, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The module's weights as numpy arrays, or None when they are not the plain tensors fit produced."""
    state = module.state_dict()
    if set(state) != set(reference):
        return None
    # Plain tensors of any dtype (BatchNorm counts batches in int64); quantised layers hold packed objects.
    if not all(isinstance(v, torch.Tensor) and not v.is_quantized for v in state.values()):
        return None
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


class TorchClassifierBase(ClassifierMixin, BaseEstimator):
    """Subclasses set the hyperparameters in __init__ and implement _network_args / _make_network."""

    n_classes: int | None
    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    validation_fraction: float
    random_state: int

    # -- subclass hooks ---------------------------------------------------------------------------
    def _network_args(self, X: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _make_network(**args: Any) -> nn.Module:
        raise NotImplementedError

    def _learn_input_scaling(self, X: np.ndarray) -> None:
        """Fit-time statistics the network's input needs (none by default)."""

    def _to_input(self, X: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(X)

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch

    # -- sklearn API ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> TorchClassifierBase:
        features = self._check_features(X, fitting=True)
        targets = np.asarray(y)
        if targets.ndim != 1 or len(targets) != len(features):
            raise ValueError(
                f"y must be 1-D with one label per row: X has {len(features)}, y has {targets.shape}"
            )
        self.classes_ = np.arange(self.n_classes) if self.n_classes else np.unique(targets)
        index = np.searchsorted(self.classes_, targets).clip(0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[index], targets):
            raise ValueError(f"y holds labels outside the classes {self.classes_.tolist()}")
        self._learn_input_scaling(features)
        self.network_args_ = self._network_args(features)
        with torch_session(self.random_state):
            network, epochs, best = self._train(features, index.astype(np.int64))
        self.weights_ = {k: v.detach().cpu().numpy().copy() for k, v in network.state_dict().items()}
        self.n_epochs_, self.best_epoch_ = epochs, best
        self.module_ = network.eval()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_args_")
        features = self._check_features(X, fitting=False)
        network = self.network()
        with torch_session(None), torch.no_grad():
            logits = [
                network(self._to_input(features[start : start + _PREDICT_BATCH]))
                for start in range(0, len(features), _PREDICT_BATCH)
            ]
        # Softmax in float64 so rows sum to 1 to machine precision, as scoring and the gate assume.
        proba = torch.softmax(torch.cat(logits).double(), dim=1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- the live network ---------------------------------------------------------------------------
    def network(self) -> nn.Module:
        """The nn.Module in eval mode (its nn.Linear layers are what dynamic quantisation replaces)."""
        check_is_fitted(self, "network_args_")
        if getattr(self, "module_", None) is None:
            network = self._make_network(**self.network_args_)
            network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights_.items()})
            self.module_ = network.eval()
        return self.module_

    def replace_network(self, network: nn.Module) -> None:
        """Predict with a transformed copy, e.g. torch.ao.quantization.quantize_dynamic(est.network(), ...).

        Setting ``module_`` directly is equivalent. A replacement whose state is not plain float tensors is
        pickled whole, so that estimator needs pickle/cloudpickle, not skops.
        """
        self.module_ = network.eval()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        module = state.pop("module_", None)
        if module is not None:
            weights = _plain_weights(module, state.get("weights_") or {})
            if weights is None:
                # The float weights it replaced would only double the artifact a compression step shrank.
                state["module_"], state["weights_"] = module, None
            else:
                state["weights_"] = weights  # whatever the live module holds now, e.g. after fine-tuning
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if state.get("weights_") is not None and "module_" not in state:
            self.network()  # rebuilt on load (skops calls this too), so module_ is there for whoever looks

    # -- internals ------------------------------------------------------------------------------------
    def _check_features(self, X: Any, *, fitting: bool) -> np.ndarray:
        features = np.asarray(X, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"expected a 2-D feature matrix, got shape {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN or infinity; impute before the torch estimator")
        if fitting:
            self.n_features_in_ = features.shape[1]
        elif features.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {features.shape[1]}")
        return np.ascontiguousarray(features)

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        rows = np.arange(len(y))
        if self.validation_fraction <= 0 or len(y) < _MIN_ROWS_FOR_EARLY_STOPPING:
            return rows, None
        try:
            train, valid = train_test_split(
                rows, test_size=self.validation_fraction, stratify=y, random_state=self.random_state
            )
        except ValueError:  # a class too rare to stratify: a plain seeded split still stops early
            train, valid = train_test_split(
                rows, test_size=self.validation_fraction, random_state=self.random_state
            )
        return np.sort(train), np.sort(valid)

    def _train(self, X: np.ndarray, y: np.ndarray) -> tuple[nn.Module, int, int]:
        network = self._make_network(**self.network_args_)
        optimizer = torch.optim.Adam(
            network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        # Cosine decay: large steps early, fine ones by the end, without a schedule to tune.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        loss_fn = nn.CrossEntropyLoss()
        train_rows, valid_rows = self._split(y)
        inputs, targets = self._to_input(X), torch.from_numpy(y)
        generator = torch.Generator().manual_seed(self.random_state)
        best_loss, best_epoch, best_state, epoch = float("inf"), 0, None, 0
        for epoch in range(1, self.max_epochs + 1):
            network.train()
            order = torch.from_numpy(train_rows)[torch.randperm(len(train_rows), generator=generator)]
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                if len(batch) < 2 and len(order) > 1:
                    continue  # a single-row batch gives a noisy step (and breaks batch statistics)
                optimizer.zero_grad()
                loss = loss_fn(network(self._augment(inputs[batch], generator)), targets[batch])
                loss.backward()
                optimizer.step()
            schedule.step()
            if valid_rows is None:
                continue
            network.eval()
            with torch.no_grad():
                valid_loss = float(loss_fn(network(inputs[valid_rows]), targets[valid_rows]))
            if valid_loss < best_loss - 1e-6:
                best_loss, best_epoch, best_state = valid_loss, epoch, copy.deepcopy(network.state_dict())
            elif epoch - best_epoch >= self.patience:
                break
        if best_state is not None:
            network.load_state_dict(best_state)  # the epoch that generalised best, not the last one
        else:
            best_epoch = epoch
        return network, epoch, best_epoch
