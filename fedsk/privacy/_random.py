"""Where noise randomness comes from.

By default every noise stream is seeded from the operating system's
cryptographic source. A user-supplied ``random_state`` makes noise
reproducible for simulation and is warned about. Seeds for parties are
derived in the parent process as plain integers: no generator object ever
crosses into a joblib worker (a pickled generator would give every worker the
same stream).
"""

import numbers
import secrets
import warnings

import numpy as np

from ._errors import SeededNoiseWarning


def noise_seed_sequence(random_state=None):
    """Return the root of the noise seeds for one fit.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        ``None`` (the default) draws 128 bits from :mod:`secrets`. Anything
        else makes the noise reproducible and emits a
        :class:`SeededNoiseWarning`.

    Returns
    -------
    seed_sequence : numpy.random.SeedSequence
    """
    if random_state is None:
        return np.random.SeedSequence(secrets.randbits(128))
    warnings.warn(
        "random_state is set, so the privacy noise is reproducible: use this "
        "for simulation only, never for a release to untrusted parties.",
        SeededNoiseWarning,
        stacklevel=3,
    )
    if isinstance(random_state, numbers.Integral):
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise ValueError(
        "random_state must be None, an int, a numpy RandomState or Generator; "
        f"got {random_state!r}."
    )


def spawn_seeds(seed_sequence, n):
    """Derive ``n`` independent integer seeds from ``seed_sequence``.

    Each call advances the sequence, so successive releases get fresh seeds.
    """
    return [
        int(child.generate_state(1, np.uint64)[0]) for child in seed_sequence.spawn(n)
    ]


def noise_generator(seed):
    """Return the noise generator for one integer seed."""
    return np.random.Generator(np.random.PCG64DXSM(seed))
