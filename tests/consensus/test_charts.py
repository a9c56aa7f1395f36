from __future__ import annotations

import numpy as np
import pytest

from bot.consensus.charts import render_charts


def test_render_charts_png() -> None:
    pytest.importorskip("matplotlib")
    png = render_charts(
        ["bike lanes", "parks", "buses"],
        np.array([0.4, 0.2, 0.7]),
        np.array([4.0, np.nan, 2.5]),
        np.array([3.0, np.nan, 5.0]),
        np.array([False, False, True]),
    )
    assert png is not None
    assert png.startswith(b"\x89PNG")
