"""The column-mapping step's prompt for a law input that only some laws take: the unique tokens ``U`` of the
data-constrained law (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", eq. (5);
``workbench.fit.repetition``). While a chosen law of the scaling-law fitter needs the input, a column
choice for it shows under the Mapping field, and until a column is mapped a message beside it says what is
missing (the fit refuses too). Choosing a column writes ``U=<column>`` into the mapping; typing it there
selects it here. A choice made here maps one column and confirms nothing else: an uploaded file's mapping
still waits for Confirm mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import panel as pn

from workbench.apps.base import escape
from workbench.apps.components.data_source import DataSource
from workbench.fit.data import FitDataError, parse_mapping

NOT_MAPPED = "(not mapped)"


def derived_names(text: str) -> list[str]:
    """The names of the derived columns (``name = expression`` per line, `back-quoted` names unquoted)."""
    names = []
    for line in filter(None, (ln.strip() for ln in (text or "").splitlines())):
        name = line.split("=", 1)[0].strip() if "=" in line else ""
        names.append(name[1:-1].strip() if len(name) > 1 and name[0] == name[-1] == "`" else name)
    return [n for n in names if n]


class InputColumn:
    """The column of law input ``key`` (described as ``what``) in ``source``'s mapping, shown while a chosen
    law needs it (:meth:`update`)."""

    def __init__(self, source: DataSource, key: str = "U", what: str = "unique tokens") -> None:
        self.source, self.key, self.what = source, key, what
        self.needing: list[str] = []  # the chosen laws that take the input
        self._derived: list[str] = []
        self._syncing = False
        self.select = pn.widgets.Select(label=f"{what.capitalize()} column ({key})", options=[NOT_MAPPED],
                                        value=NOT_MAPPED, visible=False, css_classes=[f"wb-input-{key}"])
        self.select.param.watch(self._chosen, "value")
        self.note = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["wb-input-missing"],
                                  sizing_mode="stretch_width")
        source.param.watch(lambda *_: self._sync(), ["mapping", "loaded"])

    def update(self, laws: Sequence[str], derived: str = "") -> None:
        """Show the prompt for the chosen ``laws`` that take the input; ``derived``: the derived columns' text
        (their names are choices too)."""
        from workbench.fit import get_law

        self.needing = [n for n in laws if self.key in get_law(n).inputs]
        self._derived = derived_names(derived)
        self._sync()

    def mapped(self) -> str | None:
        """The column the mapping gives the input, or None."""
        try:
            return parse_mapping(self.source.mapping).get(self.key) or None
        except FitDataError:
            return None

    def columns(self) -> list[str]:
        cols = [str(c) for c in self.source.df.columns]
        return cols + [n for n in self._derived if n not in cols]

    def missing(self) -> str:
        """What the page says (Markdown, user text escaped) while a chosen law needs the input and the mapping
        gives it no column of the data; "" when nothing is missing."""
        if not self.needing:
            return ""
        laws = ", ".join(f"**{n}**" for n in self.needing)
        col, cols = self.mapped(), self.columns()
        if col is None:
            return (f"{laws} needs the {self.what} **{self.key}** (the number of distinct training tokens; "
                    f"tokens D beyond them are repeats): choose their column under *{self.select.label}*, or add "
                    f"`{self.key}=<column>` to the Mapping (a derived column works too). Fit waits for it.")
        if cols and col not in cols:
            return (f"{laws}: the mapping's {self.what} column '{escape(col)}' is not a column of the data: "
                    f"choose one under *{self.select.label}*.")
        return ""

    def _sync(self) -> None:
        col = self.mapped()
        options = [NOT_MAPPED] + self.columns()
        self._syncing = True
        try:
            self.select.options = options
            self.select.value = col if col in options else NOT_MAPPED
        finally:
            self._syncing = False
        self.select.visible = bool(self.needing)
        msg = self.missing()
        self.note.object = msg  # its one user string, the column name, is escaped in missing()
        self.note.visible = bool(msg)

    def _chosen(self, event: Any) -> None:
        if self._syncing:
            return
        try:
            mapping = parse_mapping(self.source.mapping)
        except FitDataError as e:
            self.source.host.show_error(f"**mapping**: {escape(str(e))}")
            return
        mapping.pop(self.key, None)
        if event.new != NOT_MAPPED:
            mapping[self.key] = event.new
        src, confirmed = self.source, self.source.mapping_confirmed
        src.mapping = ",".join(f"{k}={v}" for k, v in mapping.items())
        if not confirmed:  # one column chosen; the rest of an uploaded file's proposal still awaits the user
            src.mapping_confirmed = False
            src.confirm_btn.visible = True

    def view(self) -> pn.viewable.Viewable:
        return pn.Column(self.select, self.note, sizing_mode="stretch_width")
