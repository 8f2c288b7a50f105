from pathlib import Path

import pandas as pd
import pytest

from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.monitoring.traffic import champion_home


@pytest.fixture
def home(aimass_home: Settings, credit_frame: pd.DataFrame, tmp_path: Path) -> tuple[Settings, pd.DataFrame]:
    return champion_home(aimass_home, credit_frame, tmp_path)
