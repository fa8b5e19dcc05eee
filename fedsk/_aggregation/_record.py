"""What a party remembers between tasks: the releases it gave a final answer for.

A party must answer the final step of a secure sum (its unmasking shares, or
its partial sum) once per release: two answers to different final messages
could expose its input. Its tasks may run in fresh worker processes, so the
record is kept where the party runs, in files (one per release id, created
atomically), under a directory named after a hash of its secret. A party
agent keeps the same record in its durable ledger instead.
"""

import hashlib
import os
import tempfile


class AnsweredReleases:
    """The release ids a party has answered the final step of, on its machine.

    Parameters
    ----------
    secret : bytes
        The party's own secret (only a hash of it names the directory).
    root : str, default=None
        Where the records are kept (default: the system's temporary folder).
    """

    def __init__(self, secret, root=None):
        digest = hashlib.sha256(b"fedsk answered " + secret).hexdigest()[:32]
        base = tempfile.gettempdir() if root is None else root
        self.directory = os.path.join(base, "fedsk-answered", digest)

    def __contains__(self, release_id):
        return os.path.exists(self._path(release_id))

    def add(self, release_id):
        """Record ``release_id``; raise if it was already recorded (atomic
        across processes)."""
        os.makedirs(self.directory, exist_ok=True)
        try:
            os.close(os.open(self._path(release_id), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            raise RuntimeError("already answered for this release") from None

    def _path(self, release_id):
        if not release_id.isalnum():  # a release id names a file: no paths
            raise ValueError("A release id is letters and digits only.")
        return os.path.join(self.directory, release_id)
