"""The TUI's screens: first run, unlock, dashboard, circle, proposal, forms and help."""
