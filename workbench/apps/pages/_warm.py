"""Run once by ``panel serve --setup`` (``workbench serve``) before the server accepts connections.

Imports the served apps and the science modules their first session needs (the schedule registry and the
fitters import torch), so that a visitor's first page load does not wait for them: the schedule lab's cold
load was 14 s on 2 cores, most of it importing torch inside the first session (issue 13). The server takes
that time once, at start, instead.
"""

import importlib

from workbench.apps import APPS

for info in APPS.values():
    importlib.import_module(info.target.split(":")[0])
for module in ("workbench.schedules", "workbench.fit"):
    importlib.import_module(module)  # the package's own modules: an import error must show, not be skipped
