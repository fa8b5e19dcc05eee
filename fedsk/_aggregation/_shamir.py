"""Shamir secret sharing of 256-bit secrets over GF(2^521 - 1).

A secret is the constant term of a random polynomial of degree
``threshold - 1``; party ``i`` (numbered from 1) holds its value at ``i``.
Any ``threshold`` shares give the secret back by Lagrange interpolation at
0; fewer reveal nothing about it.
"""

import secrets

PRIME = 2**521 - 1  # a Mersenne prime, larger than any 256-bit secret


def share_secret(secret, n_shares, threshold):
    """Split ``secret`` (int, ``0 <= secret < PRIME``) into ``n_shares`` shares.

    Returns
    -------
    shares : list of (int, int)
        ``(x, f(x))`` for ``x = 1 .. n_shares``.
    """
    if not 1 <= threshold <= n_shares:
        raise ValueError(f"threshold must be in [1, {n_shares}]; got {threshold!r}.")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, n_shares + 1):
        value = 0
        for coefficient in reversed(coefficients):
            value = (value * x + coefficient) % PRIME
        shares.append((x, value))
    return shares


def reconstruct_secret(shares):
    """The secret from at least ``threshold`` distinct shares."""
    secret = 0
    for i, (x_i, y_i) in enumerate(shares):
        numerator, denominator = 1, 1
        for j, (x_j, _) in enumerate(shares):
            if i != j:
                numerator = numerator * (-x_j) % PRIME
                denominator = denominator * (x_i - x_j) % PRIME
        secret = (secret + y_i * numerator * pow(denominator, -1, PRIME)) % PRIME
    return secret
