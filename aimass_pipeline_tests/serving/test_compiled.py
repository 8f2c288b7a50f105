"""The service scores with the compiled graph when it agrees with the pipeline, and with the pipeline when
it cannot be compiled."""

import logging

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

from aimass_pipeline.models.compile import CompiledModel
from aimass_pipeline.serving.compiled import contract_rows, fastest
from aimass_pipeline_tests.serving.test_bento_service import CONTRACT, _train


def test_the_service_serves_the_compiled_graph_and_it_scores_records_like_the_pipeline() -> None:
    pipeline = _train(seed=7)
    served = fastest(pipeline, CONTRACT)
    assert isinstance(served, CompiledModel), type(served)
    rows = contract_rows(CONTRACT, n=300, seed=5)
    records = [
        {k: (None if v is None or v != v else v) for k, v in r.items()} for r in rows.to_dict("records")
    ]
    np.testing.assert_allclose(served.predict_rows(records), pipeline.predict_proba(rows), atol=1e-4)


def test_a_model_that_does_not_compile_is_served_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    rows = contract_rows(CONTRACT, n=200).fillna(0)
    numeric = CONTRACT.numeric_features
    model = make_pipeline(
        ColumnTransformer([("num", QuantileTransformer(n_quantiles=20), numeric)]), LogisticRegression()
    ).fit(rows, np.arange(len(rows)) % 2)
    with caplog.at_level(logging.WARNING):
        assert fastest(model, CONTRACT) is model
    assert "uncompiled" in caplog.text and "QuantileTransformer" in caplog.text
