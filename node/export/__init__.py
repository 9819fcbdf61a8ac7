"""Exports of a node's records: readable (md, csv, json) and self-verifying archives.

See docs/exports.md. ``archive_format`` is the byte layout, ``archive`` writes and verifies
archives, ``collect`` gathers the records, ``render`` and ``markdown`` format them, ``files``
publishes outputs atomically.
"""
