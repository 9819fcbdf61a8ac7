"""Widgets the TUI's screens share; each shows plain values from :mod:`node.tui.data`."""
