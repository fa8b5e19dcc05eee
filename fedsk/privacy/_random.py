"""Where noise randomness comes from, and exact integer draws from it.

Every noise draw is made from uniform random 64-bit words of a ChaCha20
keystream (:class:`NoiseSource`). A party keys it with 32 bytes it derives
itself from its own operating-system randomness; a user-supplied
``random_state`` (simulation only, warned about) is expanded into a key with
SHA-256 instead, so the same integer gives the same noise. No numpy bit
generator (PCG64, PCG64DXSM, ...) and no global generator is involved.

On top of the words, this module has the exact primitives the samplers of
:mod:`fedsk.privacy._mechanisms` are built from, all vectorised with numpy
(loops run over rounds of rejection, never over coordinates), all in
integer arithmetic:

- :func:`uniform_below`: uniform integers in ``[0, m)`` by rejection, so
  every value has probability exactly ``1 / m``;
- :func:`bernoulli_exp`: Bernoulli(``exp(-num / den)``) for rational
  ``0 <= num / den <= 1`` (Algorithm 1 of [1]_);
- :func:`geometric_exp1`: the number of successes of Bernoulli(``exp(-1)``)
  trials before the first failure, so ``P(G >= k) = exp(-k)`` exactly.

Seeds for the simulation path are derived in the parent process as plain
integers (:func:`spawn_seeds`); no generator object ever crosses into a
joblib worker (a :class:`NoiseSource` refuses to be pickled).

References
----------
.. [1] C. Canonne, G. Kamath, T. Steinke, "The discrete Gaussian for
   differential privacy", NeurIPS 2020.
"""

import hashlib
import math
import numbers
import secrets
import warnings

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ._errors import SeededNoiseWarning

KEY_BYTES = 32
# ChaCha20 has a 32-bit block counter here: 2^32 blocks of 64 bytes. Stop
# far before it wraps (64 GiB of noise words from one key).
_MAX_WORDS = 2**33
_TWO_64 = 2**64


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
        Only a source of integer seeds (:func:`spawn_seeds`), each of which
        :func:`noise_generator` turns into a ChaCha20 key; it never draws
        noise itself.
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


class NoiseSource:
    """Uniform random 64-bit words: the ChaCha20 keystream of a 32-byte key.

    Build it with :func:`noise_generator`. It cannot be pickled: a copy
    sent to a worker would repeat the same noise.

    Parameters
    ----------
    key : bytes of length 32
    """

    def __init__(self, key):
        self._encryptor = Cipher(
            algorithms.ChaCha20(bytes(key), bytes(16)), mode=None
        ).encryptor()
        self._words_used = 0

    def words(self, n):
        """The next ``n`` words of the keystream, as uint64."""
        n = int(n)
        self._words_used += n
        if self._words_used > _MAX_WORDS:
            raise RuntimeError(
                "this noise source has produced 2^33 words, the most one key "
                "may give; derive a new key for further noise."
            )
        out = np.empty(n, dtype=np.uint64)
        if n:
            # zeros XOR keystream, written over ``out``; the input is a
            # separate buffer (cryptography >= 51 refuses overlapping ones)
            zeros = bytes(out.nbytes)
            self._encryptor.update_into(zeros, memoryview(out).cast("B"))
        return out

    def __reduce__(self):
        raise TypeError(
            "a NoiseSource cannot be pickled: a copy would repeat its noise. "
            "Send a seed or a key, and call noise_generator on the other side."
        )

    def __repr__(self):
        return f"NoiseSource(ChaCha20, {self._words_used} words used)"


def noise_generator(seed):
    """Return the noise source for one key or one simulation seed.

    Parameters
    ----------
    seed : bytes or int
        ``bytes`` of length 32: a key the party derived itself from its own
        operating-system randomness (the normal case); it keys ChaCha20
        directly. ``int``: a simulation seed (from a user's
        ``random_state``); it is expanded into a key with SHA-256, so the
        same integer always gives the same noise.

    Returns
    -------
    source : NoiseSource
        Pass it as ``rng`` to :func:`~fedsk.privacy.discrete_laplace`,
        :func:`~fedsk.privacy.discrete_gaussian` and
        :func:`~fedsk.privacy.polya_laplace_share`.
    """
    if isinstance(seed, (bytes, bytearray)):
        if len(seed) != KEY_BYTES:
            raise ValueError(
                f"a noise key must be {KEY_BYTES} bytes; got {len(seed)} bytes. "
                "Derive it with fedsk.privacy.derive_key."
            )
        return NoiseSource(bytes(seed))
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        text = b"fedsk simulation noise seed " + str(int(seed)).encode()
        return NoiseSource(hashlib.sha256(text).digest())
    raise TypeError(
        f"seed must be 32 bytes (a key) or an int (a simulation seed); got {seed!r}."
    )


# -- exact integer draws --------------------------------------------------------


def random_words(rng, n):
    """``n`` uniform uint64 words from ``rng``.

    ``rng`` is a :class:`NoiseSource`. A ``numpy.random.Generator`` is also
    accepted as a source of bits, for statistical tests and privacy audits
    only: the samplers stay exact, but its bits are not cryptographic and a
    release never uses one.
    """
    if isinstance(rng, NoiseSource):
        return rng.words(n)
    if isinstance(rng, np.random.Generator):
        return np.frombuffer(rng.bytes(8 * int(n)), dtype=np.uint64).copy()
    raise TypeError(
        "rng must be a fedsk noise source (fedsk.privacy.noise_generator) or, "
        f"for tests, a numpy Generator; got {type(rng).__name__}."
    )


def random_bits(rng, n):
    """``n`` fair coin flips, as a bool array."""
    words = random_words(rng, -(-int(n) // 64))
    return np.unpackbits(words.view(np.uint8))[: int(n)].astype(bool)


def uniform_below(rng, m, size=None):
    """Uniform integers in ``[0, m)``, each with probability exactly ``1 / m``.

    Parameters
    ----------
    rng : NoiseSource
    m : int or ndarray of int, every value in ``[1, 2^64)``
        One bound per draw (an array), or one bound for ``size`` draws.
    size : int, default=None
        Number of draws when ``m`` is one bound.

    Returns
    -------
    values : ndarray of uint64, of the shape of ``m`` (or ``size``)

    Notes
    -----
    A word ``x`` is kept when ``x >= 2^64 mod m``; the kept words are a
    multiple of ``m`` in number, so ``x mod m`` is exactly uniform. A word
    is redrawn with probability below ``m / 2^64``.
    """
    m = np.asarray(m, dtype=np.uint64)
    if np.any(m == 0):
        raise ValueError("uniform_below needs every bound m >= 1.")
    if size is not None:  # one bound for all
        x = random_words(rng, size)
        threshold = (np.uint64(0) - m) % m  # 2^64 mod m, in uint64 arithmetic
        redo = np.flatnonzero(x < threshold)
        while redo.size:
            x[redo] = random_words(rng, redo.size)
            redo = redo[x[redo] < threshold]
        return x % m
    threshold = (np.uint64(0) - m) % m
    x = random_words(rng, m.size).reshape(m.shape)
    redo = np.flatnonzero(x < threshold)
    while redo.size:
        x.flat[redo] = random_words(rng, redo.size)
        redo = redo[x.flat[redo] < threshold.flat[redo]]
    return x % m


def bernoulli_inverse(rng, k):
    """Exact Bernoulli(``1 / k``) for each ``k`` in ``[1, 2^32)``.

    Lemire's multiply-shift on 32-bit halves of the words: ``x k`` for a
    uniform 32-bit ``x`` is split into ``hi = x k >> 32`` and ``lo``; draws
    with ``lo < 2^32 mod k`` are redrawn (a division only for them), the
    rest give ``hi`` uniform in ``[0, k)``, exactly; the result is
    ``hi == 0``.
    """
    k = np.asarray(k, dtype=np.uint64)
    if np.any(k >= 2**32):
        return uniform_below(rng, k) == 0
    out = np.empty(k.size, dtype=bool)
    todo = np.arange(k.size)
    low32 = np.uint64(0xFFFFFFFF)
    while todo.size:
        x = random_words(rng, -(-todo.size // 2)).view(np.uint32)[: todo.size]
        prod = x.astype(np.uint64) * k
        lo = prod & low32
        bad = np.zeros(todo.size, dtype=bool)
        check = np.flatnonzero(lo < k)
        if check.size:
            bad[check] = lo[check] < (np.uint64(2**32) - k[check]) % k[check]
        good = ~bad
        out[todo[good]] = (prod[good] >> np.uint64(32)) == 0
        todo, k = todo[bad], k[bad]
    return out


def uniform_below_int(rng, m, size):
    """``size`` uniform Python integers in ``[0, m)`` for any integer ``m >= 1``.

    The exact fallback for bounds of 64 bits or more: ``ceil(bits / 64)``
    words are joined and masked to the bit length of ``m``, and values
    ``>= m`` are redrawn (probability below 1/2 per round). Returns an
    object array.
    """
    m = int(m)
    bits = m.bit_length()
    n_words = -(-bits // 64)
    mask = (1 << bits) - 1
    out = np.empty(size, dtype=object)
    todo = np.arange(size)
    while todo.size:
        words = random_words(rng, n_words * todo.size).reshape(todo.size, n_words)
        value = np.zeros(todo.size, dtype=object)
        for j in range(n_words):
            value = (value << 64) | words[:, j].astype(object)
        value = value & mask
        keep = np.asarray(value < m, dtype=bool)
        out[todo[keep]] = value[keep]
        todo = todo[~keep]
    return out


def bernoulli_exp(rng, num, den):
    """Exact Bernoulli(``exp(-num / den)``) for ``0 <= num <= den``.

    Algorithm 1 of [1]_: with ``K = 1, 2, ...``, draw ``A_K`` ~
    Bernoulli(``num / (den K)``) until one fails; the result is ``K`` odd.
    ``A_K`` is drawn as Bernoulli(``1 / K``) and Bernoulli(``num / den``)
    together, which is the same product of probabilities and keeps every
    bound at most ``max(K, den)``.

    Parameters
    ----------
    rng : NoiseSource
    num : ndarray of int
        Numerators, ``0 <= num <= den``; an object array of Python integers
        when ``den`` has 64 bits or more.
    den : int
        The common denominator, ``>= 1``, of any size (from 2^64 on, in
        Python integers: exact, slower).

    Returns
    -------
    success : ndarray of bool, of the shape of ``num``
    """
    num = np.asarray(num)
    shape = num.shape
    num = num.ravel()
    den = int(den)
    big = den >= _TWO_64
    if not big:
        num = num.astype(np.uint64)
    result = np.empty(num.size, dtype=bool)
    todo = np.arange(num.size)
    k = np.ones(num.size, dtype=np.uint64)
    while todo.size:
        if big:
            a = np.asarray(uniform_below_int(rng, den, todo.size) < num, dtype=bool)
        else:
            a = uniform_below(rng, den, todo.size) < num
        later = np.flatnonzero(k > 1)  # Bernoulli(1 / 1) always succeeds
        if later.size:
            a[later] &= bernoulli_inverse(rng, k[later])
        done = ~a
        result[todo[done]] = (k[done] & np.uint64(1)).astype(bool)
        todo, num, k = todo[a], num[a], k[a] + np.uint64(1)
    return result.reshape(shape)


# 20! < 2^64: one word decides the first 19 steps of Algorithm 1 at gamma = 1.
_FACT = math.factorial(20)
_FACT_CUTS = np.array([_FACT // math.factorial(j) for j in range(20, 1, -1)], np.uint64)


def bernoulli_exp1(rng, n):
    """``n`` exact Bernoulli(``exp(-1)``) draws.

    :func:`bernoulli_exp` at ``num = den``: the steps ``K = 2, 3, ...`` all
    succeed up to ``j`` with probability ``1 / j!``, so one uniform ``X`` in
    ``[0, 20!)`` gives the first failing ``K`` (the least ``j`` with
    ``X >= 20! / j!``); only when ``X = 0`` (probability ``1 / 20!``) do the
    steps go on one at a time. The result is ``K`` odd.
    """
    x = uniform_below(rng, _FACT, n)
    # _FACT_CUTS ascends: 20!/20!, 20!/19!, ..., 20!/2!; count cuts <= X
    passed = np.searchsorted(_FACT_CUTS, x, side="right")  # 0..19
    k = (21 - passed).astype(np.uint64)  # first failing K, or 21 when X = 0
    todo = np.flatnonzero(passed == 0)
    while todo.size:  # K > 20: one step at a time
        a = bernoulli_inverse(rng, k[todo])
        k[todo[a]] += np.uint64(1)
        todo = todo[a]
    return (k & np.uint64(1)).astype(bool)


def geometric_exp1(rng, n):
    """Successes of Bernoulli(``exp(-1)``) trials before the first failure.

    ``P(G >= k) = exp(-k)`` exactly, for every ``k``: nothing caps the
    tail. Returns an int64 array of length ``n``.
    """
    g = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        todo = todo[bernoulli_exp1(rng, todo.size)]
        g[todo] += 1
    return g
