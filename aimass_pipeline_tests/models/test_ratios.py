import numpy as np
import pandas as pd

from aimass_pipeline.models.ratios import add_ratios


def test_ratios_never_produce_infinity() -> None:
    frame = pd.DataFrame(
        {"Amount": [100.0, 50.0], "Price": [0.0, 100.0], "Debt": [1.0, np.nan], "Assets": [0.0, 5.0]}
    )
    out = add_ratios(frame)
    assert np.isnan(out.loc[0, "amount_to_price"]) and out.loc[1, "amount_to_price"] == 0.5
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()
