"""One fit's view of the federation: its budget, clipping, trust and seeds.

Algorithms in this package see parties only through :meth:`FitSession.release`:
they name a statistic and the fraction of the fit's budget to spend on it,
and get back noisy totals.
"""

from tqdm.auto import tqdm

from .._federation import Request
from ..privacy import budget_share


class FitSession:
    """The federation as one fit sees it.

    Parameters
    ----------
    federation : Federation
    estimator_name : str
        Name under which releases are charged.
    epsilon, delta : float
        The fit's budget; algorithms spend fractions of it.
    clipping : Clipping
        Public clipping region.
    trust : {"central", "local", "secure", "peer_to_peer"}
    seed_sequence : numpy.random.SeedSequence
        Root of this fit's noise seeds.
    fit_ledger : BudgetLedger
        The fit's own ledger (ceiling: its epsilon and delta).
    share : float, default=1.0
        Part of the budget that fractions refer to (the rest was spent
        before, e.g. on private bounds).
    strategy : str, default="auto"
        Training strategy of iterative algorithms.
    max_rounds : int or None, default=None
        Cap on the rounds of iterative algorithms (None: their default).
    verbose : int, default=0
        Show a progress bar over rounds when positive, and over parties in
        each release when above 1.
    group_size : int, default=1
        Records per unit of privacy (see :class:`~fedsk._federation.Request`).

    Attributes
    ----------
    timings : dict
        Seconds spent on the parties' side and in aggregation, summed over
        this fit's releases.
    """

    def __init__(
        self,
        federation,
        *,
        estimator_name,
        epsilon,
        delta,
        clipping,
        trust,
        seed_sequence,
        fit_ledger,
        share=1.0,
        strategy="auto",
        max_rounds=None,
        verbose=0,
        group_size=1,
    ):
        self.federation = federation
        self.estimator_name = estimator_name
        self.epsilon = epsilon
        self.delta = delta
        self.clipping = clipping
        self.trust = trust
        self.seed_sequence = seed_sequence
        self.fit_ledger = fit_ledger
        self.share = share
        self.strategy = strategy
        self.max_rounds = max_rounds
        self.verbose = verbose
        self.group_size = group_size
        self.timings = {}  # seconds per phase, summed over releases

    @property
    def n_features(self):
        return self.federation.n_features_in_

    def progress(self, rounds, what):
        """A progress bar over ``rounds`` (silent unless ``verbose``)."""
        return tqdm(
            total=rounds,
            desc=f"{self.estimator_name} ({what})",
            unit="round",
            disable=not self.verbose,
        )

    def release(self, statistic, fraction=1.0, *, clipping=None, **params):
        """Release ``statistic`` summed over parties, spending ``fraction``.

        Parameters
        ----------
        statistic : str
            Name in the statistic catalogue.
        fraction : float, default=1.0
            Share of the session's budget: of epsilon for pure DP, of zCDP
            rho otherwise. An algorithm's fractions add up to at most 1.
        clipping : Clipping, default=None
            Overrides the session's clipping (used before bounds are known).
        **params
            Public parameters of the statistic.

        Returns
        -------
        release : Release
        """
        epsilon, delta, rho = budget_share(
            self.epsilon, self.delta, fraction * self.share
        )
        request = Request(
            statistic=statistic,
            epsilon=epsilon,
            delta=delta,
            rho=rho,
            clipping=self.clipping if clipping is None else clipping,
            estimator=self.estimator_name,
            trust=self.trust,
            params=params,
            group_size=self.group_size,
        )
        release = self.federation.release(
            request,
            seed_sequence=self.seed_sequence,
            fit_ledger=self.fit_ledger,
            verbose=self.verbose > 1,
        )
        for phase, seconds in self.federation.last_timing_.items():
            self.timings[phase] = self.timings.get(phase, 0.0) + seconds
        return release
