"""A small multilayer perceptron for tables, fed by the pipeline's imputed, scaled, one-hot columns."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from aimass_pipeline.models.torch_base import TorchClassifierBase


class MLPNetwork(nn.Module):
    def __init__(
        self, n_inputs: int, n_classes: int, hidden_units: int, n_layers: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for _ in range(n_layers):
            # Plain nn.Linear (no fused or custom layers) so dynamic quantisation can swap every one.
            layers += [nn.Linear(width, hidden_units), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_units
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x: Any) -> Any:
        return self.out(self.hidden(x))


class TorchMLPClassifier(TorchClassifierBase):
    def __init__(
        self,
        n_classes: int | None = None,
        hidden_units: int = 64,
        n_layers: int = 2,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.15,
        random_state: int = 0,
    ) -> None:
        self.n_classes = n_classes
        self.hidden_units = hidden_units
        self.n_layers = n_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _network_args(self, X: np.ndarray) -> dict[str, Any]:
        return {
            "n_inputs": int(X.shape[1]),
            "n_classes": len(self.classes_),
            "hidden_units": int(self.hidden_units),
            "n_layers": int(self.n_layers),
            "dropout": float(self.dropout),
        }

    @staticmethod
    def _make_network(**args: Any) -> nn.Module:
        return MLPNetwork(**args)
