import json
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def mgcv_case():
    """Load a reference fit made by R's mgcv (tests/fixtures/mgcv/make_fixtures.R)."""

    def load(name: str) -> dict:
        return json.loads((FIXTURES / "mgcv" / f"{name}.json").read_text())

    return load
