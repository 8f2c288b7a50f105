"""A small torch text classifier: the mean of hashed word n-gram embeddings (an EmbeddingBag), then a linear
layer, in the spirit of fastText.

Words follow the TF-IDF word rule (``core.text_contract.tokens``); each word and each run of up to
``ngram_max`` words is hashed (CRC-32, stable across processes and machines, unlike ``hash``) into
``n_buckets`` - 1 buckets, bucket 0 being padding. So there is no vocabulary to store: the features are the
hash rule plus the embedding weights, and a word never seen in training simply lands in a bucket.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
from torch import nn

from aimass_pipeline.core.text_contract import tokens
from aimass_pipeline.models.torch_base import TorchClassifierBase

MAX_TOKENS = 256  # per text: the first 256 n-grams carry what a short report says


def hashed_ids(texts: Any, n_buckets: int, ngram_max: int) -> np.ndarray:
    """(rows, MAX_TOKENS) int64 bucket ids, 0-padded, of each text's word n-grams."""
    values = np.asarray(texts, dtype=object).reshape(-1)
    ids = np.zeros((len(values), MAX_TOKENS), dtype=np.int64)
    for row, text in enumerate(values):
        if not isinstance(text, str):
            raise ValueError(f"row {row}: expected a text, got {type(text).__name__}")
        words = tokens(text)
        grams = [
            " ".join(words[i : i + n]) for n in range(1, ngram_max + 1) for i in range(len(words) - n + 1)
        ]
        hashed = [zlib.crc32(g.encode("utf-8")) % (n_buckets - 1) + 1 for g in grams[:MAX_TOKENS]]
        ids[row, : len(hashed)] = hashed
    return ids


class _BagNet(nn.Module):
    def __init__(self, n_buckets: int, embedding_dim: int, n_classes: int) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(n_buckets, embedding_dim, mode="mean", padding_idx=0)
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(ids))


class TorchTextClassifier(TorchClassifierBase):
    def __init__(
        self,
        n_classes: int | None = None,
        embedding_dim: int = 32,
        n_buckets: int = 1 << 16,
        ngram_max: int = 2,
        learning_rate: float = 0.02,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        max_epochs: int = 15,
        patience: int = 5,
        validation_fraction: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.n_buckets = n_buckets
        self.ngram_max = ngram_max
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _network_args(self, X: np.ndarray) -> dict[str, Any]:
        n_classes = self.n_classes or len(self.classes_)
        return {"n_buckets": self.n_buckets, "embedding_dim": self.embedding_dim, "n_classes": n_classes}

    @staticmethod
    def _make_network(**args: Any) -> nn.Module:
        return _BagNet(**args)

    def _check_features(self, X: Any, *, fitting: bool) -> np.ndarray:
        values = np.asarray(X, dtype=object)
        if values.ndim == 2 and values.shape[1] != 1:
            raise ValueError(f"expected one text column, got {values.shape[1]}")
        if fitting:
            self.n_features_in_ = 1
        return hashed_ids(values, self.n_buckets, self.ngram_max)
