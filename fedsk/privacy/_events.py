"""What was released: one immutable record per release.

An event says what a party released and with which guarantee; how events
add up is the accountant's business (``_accountant.py``), as in
dp-accounting's split between ``dp_event`` and ``privacy_accountant``.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ReleaseEvent:
    """One noisy statistic released about one party's records.

    Parameters
    ----------
    party : str
        Whose records the statistic is computed on.
    estimator : str
        The fit that asked for it.
    statistic : str
        Name of the statistic in the party-side catalogue.
    mechanism : {"discrete_laplace", "discrete_linf", "discrete_gaussian", "none"}
        The noise added (``"discrete_linf"``: the L-infinity K-norm
        mechanism). ``"none"`` only with ``epsilon=inf``.
    epsilon, delta : float
        The guarantee of this release alone.
    rho : float or None
        zCDP parameter for discrete Gaussian releases, ``None`` for pure DP.
    sensitivity : float
        Sensitivity of the integer-encoded statistic (L1 for Laplace,
        L-infinity for the K-norm mechanism, L2 for Gaussian), rounding
        included.
    noise_scale : float
        Laplace or K-norm scale, or Gaussian sigma, in grid steps.
    trust : str
        Where the noise was added (``"central"``: by the aggregator once;
        ``"local"``: by the party itself, in full; ``"secure"`` and
        ``"peer_to_peer"``: by every party, a share each, summed by a
        protocol that reveals only the total).
    unit : str, default="record"
        The unit of privacy: neighbouring datasets differ in one record.
    note : str, default=""
        What else happened to this release (e.g. parties dropped out and how
        the noise was made up for).
    """

    party: str
    estimator: str
    statistic: str
    mechanism: str
    epsilon: float
    delta: float
    rho: float | None
    sensitivity: float
    noise_scale: float
    trust: str
    unit: str = "record"
    note: str = ""

    @classmethod
    def of_release(
        cls,
        party,
        *,
        estimator,
        statistic,
        encoding,
        epsilon,
        delta,
        rho,
        trust,
        group_size=1,
        note="",
    ):
        """The event of one release, from its public calibration.

        ``encoding`` is the release's ``GridEncoding`` (None: no noise);
        ``group_size`` is the unit of privacy in records.
        """
        return cls(
            party=party,
            estimator=estimator,
            statistic=statistic,
            mechanism="none" if encoding is None else encoding.mechanism,
            epsilon=epsilon,
            delta=delta,
            rho=rho,
            sensitivity=0.0 if encoding is None else encoding.sensitivity,
            noise_scale=0.0 if encoding is None else encoding.noise_scale,
            trust=trust,
            unit=(
                "record"
                if group_size == 1
                else f"party's rows (up to {group_size} records)"
            ),
            note=note,
        )

    @property
    def pure(self):
        """True for a pure epsilon-DP release."""
        return self.rho is None

    def to_dict(self):
        """The event as a plain dict."""
        return asdict(self)
