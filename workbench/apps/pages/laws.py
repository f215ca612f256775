"""Page file for `panel serve`: the scaling-law fitter app."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _page import page  # noqa: E402

page("laws").servable()
