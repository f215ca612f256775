"""Runs page: every run of the store in one table (the config keys that vary and each metric's final
and best value as columns), filtered, sorted and grouped; tags and a note per run kept in the run
store; two or more selected runs compared (curves overlaid, config diff with the differing keys
highlighted). A running run whose loss left its forecast's 95 % band is flagged in the ``forecast``
column (:mod:`workbench.forecast_watch`, computed in the background after each reload).

The table and the diff come from :mod:`workbench.runs_table`, the curves drawn in the page from
:func:`workbench.figures.curves_bokeh.curves_overlay` (Bokeh: the page loads no plotly.js, issue 13) and,
for exports, from :func:`workbench.figures.curves.curves_figure` (Plotly, built on click, without the runs
hidden from the page's legend); this module only lays them out. Under ``panel serve``
the view state (search, status, tag, sort, grouping, selection) lives in the page URL, so a reload
or a shared link shows the same table. Every user string (run names, tags, notes, config values) that
reaches HTML is escaped: the config diff and Tabulator's group headers (its cells are set as text).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go

from workbench.apps.base import AppBase, guarded, options, safe_titles
from workbench.apps.components.background import BackgroundTask
from workbench.apps.components.runs_compare import diff_html, run_configs, run_labels, shown_cell
from workbench.apps.export import ExportPanel
from workbench.figures.curves import curves_figure
from workbench.figures.curves_bokeh import curves_overlay, hidden_runs
from workbench.forecast_watch import ForecastWatch, running_flags
from workbench.runs_table import config_diff, filter_table, runs_table, sort_table
from workbench.store import STATUSES

PREFERRED = ("train_loss", "test_loss", "val_loss", "loss", "test_acc", "val_acc")


class RunsPage(AppBase):
    """The runs of the store as a table: filter, sort, group, tag, annotate, compare."""

    title = "Runs"

    query = param.String(default="", doc="Words every shown run contains (key=value matches a config key)")
    status = param.ListSelector(default=[], objects=list(STATUSES), doc="Show only these statuses (all if none)")
    tag = param.Selector(default="", objects=[""], doc="Show only runs with this tag")
    sort_by = param.Selector(default="", objects=[""], doc="Column to sort by")
    descending = param.Boolean(default=False)
    group_by = param.Selector(default="", objects=[""], doc="Group rows by this column")
    selected = param.List(default=[], item_type=str, doc="Ids of the selected runs")
    compare_metrics = param.ListSelector(default=[], objects=[], doc="Metrics drawn for the selected runs")
    only_differences = param.Boolean(default=False, doc="Config diff: hide keys that are the same")
    all_columns = param.Boolean(default=False, doc="Show every column: per-parameter metrics (names with '/') too")
    tags_text = param.String(default="", doc="Tags of the selected runs (comma-separated)")
    note_text = param.String(default="", doc="Note of the selected runs")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._all = pd.DataFrame()
        self._shown_ids: list[str] = []
        self._syncing = False
        self._flags: dict[str, str] = {}
        self._watch = ForecastWatch()  # cached fits: a reload refits only runs whose prefix grew
        self.forecast_task = BackgroundTask(self, name="runs-forecast")
        self.info = pn.pane.Markdown("", css_classes=["wb-runs-info"], margin=(0, 10))
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, selectable="checkbox", height=420,
            pagination="local", page_size=200, sizing_mode="stretch_width", css_classes=["wb-runs-table"],
            frozen_columns=["name"])
        self.table.param.watch(self._on_selection, "selection")
        self.table.param.watch(self._on_sorters, "sorters")
        self.curves = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self.curves_box = pn.Column(self.curves, visible=False, sizing_mode="stretch_width")  # the pane's own
        # ``visible`` follows its figure's, so the box is what is hidden while fewer than two runs are selected
        self.diff = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-diff-pane"])
        self.compare_md = pn.pane.Markdown("*Select two or more runs (the boxes on the left) to compare them.*")
        self.reload()

    # -------------------------------------------------------------- data
    @guarded
    def reload(self) -> None:
        """Read the runs (and their tags / notes) from the store again."""
        self._all = runs_table(self.store, flags=self._flags or None)
        if (self._all.get("status", pd.Series(dtype=str)) == "running").any() and not self.forecast_task.busy:
            self.forecast_task.start(running_flags, self.store, watch=self._watch, label="Forecasts",
                                     on_done=self._flagged)
        cols = [c for c in self._all.columns if c not in ("created",)]
        tags = sorted({t.strip() for s in self._all.get("tags", []) for t in str(s).split(",") if t.strip()})
        metrics = sorted(c.removeprefix("final.") for c in self._all.columns if c.startswith("final."))
        with param.parameterized.batch_call_watchers(self):
            self.param.tag.objects = ["", *tags]
            self.param.sort_by.objects = ["", *cols]
            self.param.group_by.objects = ["", *[c for c in cols if c in ("task", "sweep", "status", "tags")
                                                 or c.startswith("cfg.")]]
            self.param.compare_metrics.objects = options(metrics)  # MultiChoice labels are HTML: escaped
            for p in ("tag", "sort_by", "group_by"):  # a value from the URL that no longer exists
                if getattr(self, p) not in self.param[p].objects:
                    setattr(self, p, "")
            if not self.compare_metrics or not set(self.compare_metrics) <= set(metrics):
                pref = [m for m in PREFERRED if m in metrics][:2]
                self.compare_metrics = pref or metrics[:1]
        self._render()

    def _flagged(self, flags: dict[str, str]) -> None:
        """The running runs' forecast flags are in: show them."""
        self._flags = flags
        self._all = runs_table(self.store, flags=flags)
        self._render()

    def visible_table(self) -> pd.DataFrame:
        """The runs as shown: filtered, then sorted."""
        t = filter_table(self._all, self.query, status=self.status, tag=self.tag or None)
        return sort_table(t, self.sort_by or None, self.descending)

    def _hidden_column(self, col: str) -> bool:
        """Whether ``col`` is left out of the table: a per-parameter metric (``final.weight_norm/head.weight``;
        the reference grokking runs log 18, i.e. half the columns, and every column costs the page's load)
        unless all columns are asked for or the table is sorted by it. Search still matches their values."""
        return (not self.all_columns and col != self.sort_by and col.startswith(("final.", "best.")) and "/" in col)

    def _info_text(self, n_shown: int) -> str:
        n_all = len(self._all)
        if not n_all:
            return "No runs in the store yet: train one (`workbench run ...`)."
        n_hidden = sum(self._hidden_column(c) for c in self._all.columns)
        return (f"{n_shown} of {n_all} runs" + (f" · {len(self.selected)} selected" if self.selected else "")
                + (f" · {n_hidden} per-parameter metric columns not shown (tick *all columns*)" if n_hidden else ""))

    @param.depends("query", "status", "tag", "sort_by", "descending", "group_by", "all_columns", watch=True)
    def _render(self) -> None:
        # The table's rows stay in the store's order and Tabulator sorts them (``sorters``): a row's index
        # then never changes with a sort, so a checkbox ticked while a new sort order is on its way to the
        # browser still names the run the user saw (a server-side sort re-sent the rows, and a selection
        # index from the old order picked another run: its tags and note went to that run).
        t = filter_table(self._all, self.query, status=self.status, tag=self.tag or None)
        self._shown_ids = t["id"].tolist() if len(t) else []
        show = t.drop(columns=[c for c in t.columns if c == "created" or self._hidden_column(c)]).map(shown_cell)
        if self.group_by in show.columns:  # Tabulator writes group headers as HTML (cells as text): escape
            show[self.group_by] = [html.escape(str(v)) for v in show[self.group_by]]
        self._syncing = True
        try:
            self.table.titles = safe_titles(show)  # column titles (config keys, metric names) are HTML
            self.table.value = show.reset_index(drop=True)
            self.table.height = min(420, 70 + 30 * max(len(show), 1))  # a few runs: no empty box under them
            self.table.groupby = [self.group_by] if self.group_by else []
            self.table.hidden_columns = [self.group_by] if self.group_by else []  # its values head the groups
            self.table.sorters = [{"field": self.sort_by, "dir": "desc" if self.descending else "asc"}] \
                if self.sort_by else []
            self.table.selection = [i for i, r in enumerate(self._shown_ids) if r in set(self.selected)]
        finally:
            self._syncing = False
        self.info.object = self._info_text(len(t))

    def _on_selection(self, event: Any) -> None:
        if self._syncing:
            return
        shown = set(self._shown_ids)
        keep = [r for r in self.selected if r not in shown]  # selected runs hidden by a filter stay selected
        self.selected = keep + [self._shown_ids[i] for i in event.new if i < len(self._shown_ids)]

    def _on_sorters(self, event: Any) -> None:
        if self._syncing or not event.new:
            return
        s = event.new[0]
        if s.get("field") in self.param.sort_by.objects:
            with param.parameterized.batch_call_watchers(self):
                self.sort_by = s["field"]
                self.descending = s.get("dir") == "desc"

    @param.depends("selected", watch=True)
    def _on_selected(self) -> None:
        sel = self._all[self._all["id"].isin(self.selected)] if len(self._all) else self._all
        if len(sel) == 1:
            self.tags_text, self.note_text = str(sel.iloc[0]["tags"]), str(sel.iloc[0]["note"])
        self.info.object = self._info_text(len(self.visible_table()))
        self._compare()

    # -------------------------------------------------------------- tags and notes
    @guarded
    def save_annotations(self, *_: Any) -> None:
        """Write the tags and note fields to every selected run."""
        if not self.selected:
            raise ValueError("selection: select the runs to tag or annotate first")
        for rid in self.selected:
            self.store.set_tags(rid, self.tags_text)
            self.store.set_note(rid, self.note_text)
        self.clear_message()
        self.reload()

    # -------------------------------------------------------------- compare
    def _selected_runs(self) -> pd.DataFrame:
        order = {r: i for i, r in enumerate(self.selected)}
        sel = self._all[self._all["id"].isin(self.selected)]
        return sel.sort_values("id", key=lambda s: s.map(order))

    @param.depends("compare_metrics", "only_differences", watch=True)
    @guarded
    def _compare(self) -> None:
        sel = self._selected_runs() if len(self._all) else self._all
        if len(sel) < 2:
            self.curves_box.visible = False
            self.diff.object = ""
            self.compare_md.object = "*Select two or more runs (the boxes on the left) to compare them.*"
            return
        labels = run_labels(sel)
        configs = {labels[r]: self.store.get_run(r)["config"] for r in sel["id"]}
        diff = config_diff(configs, only_differences=self.only_differences)
        n_diff = int(diff["differs"].sum()) if len(diff) else 0
        self.compare_md.object = f"**{len(sel)} runs compared** · {n_diff} config key(s) differ (highlighted)"
        self.diff.object = diff_html(diff)
        m = self.data()
        self.curves_box.visible = m is not None
        if m is not None:
            self.curves.object = curves_overlay(m, labels, names=list(self.compare_metrics))

    def data(self) -> pd.DataFrame | None:
        """The selected runs' compared metrics, tidy long form: ``run, name, step, tokens, wall, value``
        (the configs are in :meth:`configs`, once per run)."""
        if len(self.selected) < 1 or not self.compare_metrics:
            return None
        ids = [r for r in self.selected if r in set(self._all["id"])]
        m = self.store.metrics(ids, list(self.compare_metrics))
        return m.drop(columns="id")[["run", "name", "step", "tokens", "wall", "value"]] if len(m) else None

    def configs(self) -> pd.DataFrame | None:
        """One row per selected run: id, name, tags, note and every flattened config key."""
        return run_configs(self.store, self._selected_runs() if len(self._all) else self._all)

    def shown_figure(self) -> go.Figure | None:
        """The compared curves as drawn in the page, as a Plotly figure: what the export buttons save. A run
        hidden by a click on its legend entry in the browser (Bokeh sends the lines' ``visible`` back to the
        server's copy of the figure) is left out."""
        if not self.curves_box.visible:
            return None
        return self.figure(hidden=hidden_runs(self.curves.object))

    def figure(self, hidden: set[str] | frozenset[str] = frozenset()) -> go.Figure | None:
        """The selected runs' curves of the chosen metrics, overlaid (one panel per metric), as a Plotly
        figure; the runs in ``hidden`` are left out."""
        m = self.data()
        if m is None:
            return None
        m = m[~m["run"].isin(hidden)]
        sel = self._selected_runs()
        sel = sel[~sel["id"].isin(hidden)]
        labels = run_labels(sel)
        runs = pd.DataFrame({"id": sel["id"], "name": [labels[r] for r in sel["id"]]})
        return curves_figure(m, runs, names=list(self.compare_metrics), title="Selected runs")

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        loc = pn.state.location
        if loc is not None and pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            loc.sync(self, {"query": "q", "status": "status", "tag": "tag", "sort_by": "sort",
                            "descending": "desc", "group_by": "group", "selected": "sel", "all_columns": "cols"})
        w = pn.widgets
        save = w.Button(label="Save tags and note to selected", color="primary", css_classes=["wb-save-notes"])
        save.on_click(self.save_annotations)
        refresh = w.Button(label="Reload from store")
        refresh.on_click(lambda *_: self.reload())
        controls = pn.Column(
            "### Filter",
            w.TextInput.from_param(self.param.query, label="search (words, or key=value)", css_classes=["wb-query"]),
            w.MultiChoice.from_param(self.param.status, label="status"),
            w.Select.from_param(self.param.tag, label="tag"),
            pn.Row(w.Select.from_param(self.param.sort_by, label="sort by", css_classes=["wb-sort"], width=170),
                   w.Checkbox.from_param(self.param.descending, label="desc", align="end", css_classes=["wb-desc"])),
            w.Select.from_param(self.param.group_by, label="group by"),
            w.Checkbox.from_param(self.param.all_columns, label="all columns (per-parameter metrics too)",
                                  css_classes=["wb-all-columns"]),
            refresh,
            "### Tags and note",
            w.TextInput.from_param(self.param.tags_text, label="tags (comma-separated)", css_classes=["wb-tags"]),
            w.TextAreaInput.from_param(self.param.note_text, label="note", height=90, css_classes=["wb-note"]),
            save,
            "### Compare",
            w.MultiChoice.from_param(self.param.compare_metrics, label="metrics"),
            w.Checkbox.from_param(self.param.only_differences, label="diff: only keys that differ"),
            width=300, sizing_mode="fixed")
        export = pn.Column(sizing_mode="stretch_width")  # below the fold: built after the page is drawn

        def add_export() -> None:
            export.objects = [ExportPanel(figure=self.shown_figure, data=self.data, configs=self.configs,
                                          basename="runs")]

        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.onload(add_export)  # its 8 buttons and style fields: the table first (issue 13)
        else:
            add_export()
        main = pn.Column(self.info, self.table, self.compare_md, self.curves_box, self.diff, export,
                         sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")

