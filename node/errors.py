"""The one exception tree of circle-node.

    NodeError                      every error circle-node raises on purpose
    +-- ConfigError                bad config file, environment or flag
    +-- KeyFileError               key files: missing, corrupt
    |   +-- WrongPassphrase        the passphrase does not open the key file
    +-- CardError                  a member card that does not parse or verify
    +-- DecodeError                bytes from outside that do not decode (op, update, frame)
    +-- SignatureError             a signature or hash that does not verify
    +-- AuthorizationError         an action the acting member is not allowed to take
    +-- DocumentError              a CRDT update that pycrdt refused (panics included)
    +-- StorageError               the SQLite store failed or is not initialised
    +-- NotFound                   a circle, member or op that is not known
    +-- ProtocolError              a peer broke the sync protocol
    +-- NetworkError               a peer cannot be reached, or the connection broke
    |                              (also a builtin ConnectionError)
    +-- Interrupted                a signal (SIGINT, SIGTERM) stopped a long command between
                                   two committed steps; what was committed stays

Third-party exceptions are translated at the edge with ``raise ... from exc``.
Every message says what happened and, where the user can act, what to do.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error circle-node raises on purpose."""


class ConfigError(NodeError):
    """A config file, environment variable or flag is invalid."""


class KeyFileError(NodeError):
    """A key file is missing, corrupt or of an unknown format."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not open the key file."""


class CardError(NodeError):
    """A member card does not parse or its signature does not verify."""


class DecodeError(NodeError):
    """Bytes from outside (op, update, frame, bundle) do not decode."""


class SignatureError(NodeError):
    """A signature or content hash does not verify."""


class AuthorizationError(NodeError):
    """The acting member is not allowed to take this action."""


class DocumentError(NodeError):
    """pycrdt refused an update (including Rust panics, which are BaseExceptions)."""


class StorageError(NodeError):
    """The SQLite store failed, or the node home is not initialised."""


class NotFound(NodeError):
    """A circle, member, op or document is not known to this node."""


class ProtocolError(NodeError):
    """A peer broke the sync protocol."""


class NetworkError(NodeError, ConnectionError):
    """A peer cannot be reached, or the connection to it broke."""


class Interrupted(NodeError):
    """A signal stopped a long command between two committed steps (the CLI exits 130)."""
