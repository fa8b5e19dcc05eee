"""A party's durable ledger: SQLite, committed before anything is sent.

One file per party agent (``fedsk party --ledger FILE.db``) holds:

- the party's secret (32 bytes from the operating system, made on first
  start): its noise and masking keys are derived from it, so after a restart
  a release id still gives the same noise;
- every charged release (:class:`~fedsk.privacy.ReleaseEvent`);
- every answer it sent for a release or a protocol step, keyed by the
  release id (and step) with a fingerprint of the request, so a replayed
  request gets the stored answer back and is not charged again, and the same
  id with other parameters is refused; old answers are dropped
  (:meth:`DurableLedger.prune`) but their keys stay, so a late replay is
  refused rather than answered with a fresh draw;
- the releases it has revealed unmasking shares for.

The charge, the answer and the reveal are written in ONE transaction, which
is committed (``synchronous=FULL``, WAL journal: fsync at commit) before the
answer leaves the agent. A ``kill -9`` at any point leaves either all of
them or none, and nothing was sent in the second case.
"""

import dataclasses
import json
import math
import sqlite3
import time

from ..privacy import BudgetLedger, ReleaseEvent, new_secret

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL,
    event TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    request TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    answer BLOB NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revealed (release_id TEXT PRIMARY KEY);
"""


class ReplayMismatch(ValueError):
    """A request id seen before, with different parameters."""


class DurableLedger:
    """The party's ledger and answer store in one SQLite file.

    Parameters
    ----------
    path : str
        The database file (created if missing).
    name : str
        The party's name; a file made for another party is refused.
    epsilon : float, default=inf
        The party's total budget (its policy: may change between starts).
    delta : float or None, default=None

    Attributes
    ----------
    ledger : BudgetLedger
        In-memory view of the charged events (loaded at start), used to
        compose and check the budget.
    secret : bytes
    """

    def __init__(self, path, name, *, epsilon=math.inf, delta=None):
        self.path = path
        self.name = name
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._transaction():
            stored = self._meta("party")
            if stored is None:
                self._db.execute(
                    "INSERT INTO meta VALUES ('party', ?)", (name.encode(),)
                )
                self._db.execute(
                    "INSERT INTO meta VALUES ('secret', ?)", (new_secret(),)
                )
            elif stored.decode() != name:
                raise ValueError(
                    f"--ledger {path} belongs to party {stored.decode()!r}, not "
                    f"{name!r}: each party keeps its own ledger file."
                )
        self.secret = bytes(self._meta("secret"))
        self.ledger = BudgetLedger(name, epsilon=epsilon, delta=delta)
        for (text,) in self._db.execute("SELECT event FROM events ORDER BY seq"):
            self.ledger.events.append(ReleaseEvent(**json.loads(text)))
        self.revealed = {
            r for (r,) in self._db.execute("SELECT release_id FROM revealed")
        }

    def _meta(self, key):
        row = self._db.execute(
            "SELECT value FROM meta WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else row[0]

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, exc, tb):
                db.execute("ROLLBACK" if kind else "COMMIT")
                return False

        return _Tx()

    def stored(self, request, fingerprint):
        """The answer stored for ``request`` (bytes), or None if it is new.

        Raises
        ------
        ReplayMismatch
            If ``request`` was answered before with other parameters.
        """
        row = self._db.execute(
            "SELECT fingerprint, answer FROM answers WHERE request = ?", (request,)
        ).fetchone()
        if row is None:
            return None
        if not row[1]:
            raise ReplayMismatch(
                f"request {request} was answered long ago and its answer is no "
                "longer kept; a release id is answered once"
            )
        if row[0] != fingerprint:
            raise ReplayMismatch(
                f"request {request} was answered before with other parameters; "
                "a release id is answered once (a new draw of its noise would let "
                "the noise be averaged away)"
            )
        return bytes(row[1])

    def record(self, request, fingerprint, answer, events=(), reveal=None):
        """Commit the charge, the answer and the reveal together, durably.

        Called before ``answer`` (bytes) is sent. The in-memory ledger and
        revealed set are updated only once the transaction has committed.
        """
        now = time.time()
        with self._transaction():
            for event in events:
                self._db.execute(
                    "INSERT INTO events (request, event, at) VALUES (?, ?, ?)",
                    (request, json.dumps(dataclasses.asdict(event)), now),
                )
            self._db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?)",
                (request, fingerprint, answer, now),
            )
            if reveal is not None:
                self._db.execute("INSERT INTO revealed VALUES (?)", (reveal,))
        self.ledger.events.extend(events)
        if reveal is not None:
            self.revealed.add(reveal)

    def prune(self, older_than):
        """Drop the answers stored more than ``older_than`` seconds ago
        (their keys and fingerprints stay); returns how many."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE answers SET answer = X'' WHERE at < ? AND length(answer) > 0",
                (time.time() - older_than,),
            )
        return cursor.rowcount

    def close(self):
        self._db.close()
