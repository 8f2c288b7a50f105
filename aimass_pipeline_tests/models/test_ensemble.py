import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from aimass_pipeline.models.ensemble import SoftVotingEnsemble


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return X, (X["a"] + 0.5 * rng.normal(size=200) > 0).astype(int).to_numpy()


def test_probabilities_are_the_members_mean(data) -> None:
    X, y = data
    members = [LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)]
    ensemble = SoftVotingEnsemble(members=members, names=["lr", "tree"]).fit(X, y)
    expected = (members[0].predict_proba(X) + members[1].predict_proba(X)) / 2
    np.testing.assert_allclose(ensemble.predict_proba(X), expected)
    np.testing.assert_array_equal(ensemble.predict(X), expected.argmax(axis=1))
    np.testing.assert_array_equal(ensemble.classes_, [0, 1])


def test_members_must_exist_and_agree_on_classes(data) -> None:
    X, y = data
    with pytest.raises(ValueError, match="at least one"):
        SoftVotingEnsemble(members=[]).predict_proba(X)
    other = LogisticRegression().fit(X, y + 1)
    with pytest.raises(ValueError, match="disagree"):
        SoftVotingEnsemble(members=[LogisticRegression().fit(X, y), other]).predict_proba(X)
