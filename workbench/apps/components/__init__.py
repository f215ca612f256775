"""Pieces of the apps (issue 17 item 6): widgets, panels and data sources that app modules compose. A
component never imports an app module; private pieces of one app carry its prefix (``lawfit_*``)."""
