"""The SQLite schema and its migrations, applied in order by ``PRAGMA user_version``.

Each migration is a list of statements run in one transaction; a store whose
``user_version`` is newer than this code knows is refused rather than guessed at.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: the op log, heights, pending buffer, evidence, checkpoints
    [
        """CREATE TABLE ops (
            lseq INTEGER PRIMARY KEY,          -- local arrival order
            op_id BLOB NOT NULL UNIQUE,
            circle BLOB NOT NULL,
            author BLOB NOT NULL,
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            doc BLOB,
            header BLOB NOT NULL,              -- the signed bytes, verbatim
            sig BLOB NOT NULL,
            body BLOB NOT NULL,
            status INTEGER NOT NULL,           -- 0 valid, 1 soft failed, 2 equivocated
            y_start INTEGER,
            y_end INTEGER,
            received INTEGER NOT NULL
        )""",
        "CREATE UNIQUE INDEX ops_chain ON ops(circle, author, seq)",
        "CREATE INDEX ops_doc ON ops(circle, doc, lseq) WHERE kind = 2",
        "CREATE INDEX ops_kind ON ops(circle, kind, lseq) WHERE kind != 2",
        """CREATE TABLE heights (
            circle BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
            head BLOB NOT NULL, PRIMARY KEY (circle, author)) WITHOUT ROWID""",
        """CREATE TABLE pending (
            op_id BLOB PRIMARY KEY, circle BLOB NOT NULL, author BLOB NOT NULL,
            seq INTEGER NOT NULL, wire BLOB NOT NULL, reason TEXT NOT NULL,
            waiting_for BLOB NOT NULL, received INTEGER NOT NULL)""",
        "CREATE INDEX pending_wait ON pending(waiting_for)",
        "CREATE INDEX pending_author ON pending(circle, author)",
        """CREATE TABLE evidence (
            op_id BLOB PRIMARY KEY, circle BLOB NOT NULL, author BLOB NOT NULL,
            seq INTEGER NOT NULL, wire BLOB NOT NULL, conflicts_with BLOB NOT NULL,
            received INTEGER NOT NULL)""",
        """CREATE TABLE frozen (
            circle BLOB NOT NULL, author BLOB NOT NULL, from_seq INTEGER NOT NULL,
            PRIMARY KEY (circle, author)) WITHOUT ROWID""",
        """CREATE TABLE checkpoints (
            circle BLOB NOT NULL, doc BLOB NOT NULL, state BLOB NOT NULL,
            covers INTEGER NOT NULL, PRIMARY KEY (circle, doc)) WITHOUT ROWID""",
        """CREATE TABLE peers (
            url TEXT PRIMARY KEY, name TEXT, node BLOB, added INTEGER NOT NULL,
            last_contact INTEGER, ops_sent INTEGER NOT NULL DEFAULT 0,
            ops_received INTEGER NOT NULL DEFAULT 0, last_error TEXT)""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB)",
    ],
    # 2: derived per-circle governance digests (node/store/digests.py), so a start-up reads
    # them instead of refolding unchanged circles; safe to empty at any time
    [
        """CREATE TABLE digests (
            circle BLOB PRIMARY KEY, stamp BLOB NOT NULL, body BLOB NOT NULL) WITHOUT ROWID""",
        # the digest stamp asks, per circle, for the ops not stored as valid: rare rows
        "CREATE INDEX ops_not_valid ON ops(circle, author, seq) WHERE status != 0",
    ],
    # 3: circles a sync is still fetching whose auth log has not yet shown this node as a
    # host (node/store/provisional.py): hidden from every reader until confirmed or purged
    [
        """CREATE TABLE provisional (
            circle BLOB PRIMARY KEY, since INTEGER NOT NULL) WITHOUT ROWID""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
