"""``FederatedEstimator``: a scikit-learn meta-estimator fitted across parties.

It turns the user's parameters into a public clipping region and a budget,
builds (or takes) a federation, runs the registered federated algorithm for
the wrapped estimator's class, and leaves a plain fitted scikit-learn
estimator in ``estimator_``.
"""

import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._federation import TRUST_MODELS, Federation
from ._warnings import warn_if_clipping_changes_most_rows, warn_if_pooled_steps_before
from .estimators import STRATEGIES, FitSession, get_algorithm, private_bounds
from .privacy import (
    BudgetLedger,
    Clipping,
    PrivacyAccountant,
    PrivacyReport,
    PrivacyWarning,
    noise_seed_sequence,
)
from .utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    validate_estimator_params,
)

# Share of the budget spent on private bounds when the user opts in.
PRIVATE_BOUNDS_SHARE = 0.1


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class FederatedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Fit a scikit-learn estimator across parties with differential privacy.

    Each party computes statistics on its own rows, clipped into a public
    region; only noisy totals are aggregated. The fitted ``estimator_`` is a
    plain scikit-learn estimator of the wrapped class.

    Parameters
    ----------
    estimator : estimator object
        The scikit-learn estimator to fit. Supported: ``StandardScaler``,
        ``LinearRegression``, ``Ridge``, ``GaussianNB``,
        ``LogisticRegression``, ``LinearSVC``, ``SGDClassifier``,
        ``SGDRegressor``, ``DecisionTreeClassifier``,
        ``DecisionTreeRegressor``, ``RandomForestClassifier``,
        ``RandomForestRegressor``, ``ExtraTreesClassifier``,
        ``ExtraTreesRegressor``, ``HistGradientBoostingClassifier``,
        ``HistGradientBoostingRegressor`` (see ``docs/estimators.md``). Its
        hyperparameters are honoured where the federated algorithm can; the
        others raise an error naming them.
    epsilon : float, default=1.0
        Privacy budget of this fit, ``> 0``. ``float("inf")`` adds no noise
        and needs no bounds.
    delta : float, default=0.0
        ``0`` gives pure epsilon-DP (discrete Laplace noise); a value in
        ``(0, 1)`` gives (epsilon, delta)-DP (discrete Gaussian noise,
        calibrated through zCDP).
    bounds : tuple (lower, upper), "private" or None, default=None
        Public per-feature range; each of ``lower`` and ``upper`` is a float
        or an array of shape (n_features,). Rows are clipped into it.
        ``"private"`` estimates it with a DP histogram, spending 10% of the
        budget. Required (or ``data_norm``) when ``epsilon`` is finite.
    binary_features : array-like of int, bool or str, default=None
        Public: the features that take only the two values of their
        ``bounds`` (0/1 indicators, one-hot encoded categories), by index,
        boolean mask or name (with named columns). Linear models and GLMs
        fitted with noise first spend part of the budget on a histogram of
        every feature, to clip into where the rows are; binary features keep
        their bounds and are left out of it, so it is less noisy for the
        others. A feature listed wrongly only keeps its public bounds.
        Requires ``bounds=(lower, upper)``.
    data_norm : float, default=None
        Largest L2 norm of a row (after clipping to ``bounds`` and mapping
        them to [-1, 1], when bounds are given). Rows beyond it are scaled
        down.
    y_bounds : tuple (lower, upper), "private" or None, default=None
        Public range of a regression target. Required for regressors when
        ``epsilon`` is finite.
    classes : array-like, default=None
        The public class labels of a classifier; required, except for a
        noise-free fit (``epsilon=inf``) on pooled rows, which takes them
        from ``y``. Nothing about the parties' labels is read: a row whose
        label is not in ``classes`` is dropped on its party's side.
    trust : {"central", "local", "secure", "peer_to_peer"}, default="central"
        ``"central"``: parties send exact clipped statistics to a trusted
        aggregator that adds the noise once. ``"local"``: each party adds
        the full noise to its statistic before it leaves (trusts nobody;
        about sqrt(n_parties) times noisier). ``"secure"``: each party adds
        a share of the noise and the shares are summed by secure
        aggregation (pairwise masks through a coordinator that learns only
        the total): central accuracy without a trusted aggregator.
        ``"peer_to_peer"``: the same, summed by additive secret sharing
        among the parties, with no coordinator at all.
    accountant : PrivacyAccountant, default=None
        Shared ledgers for the parties of ``fit(X, y, parties=...)``: spends
        of every fit that uses it (including clones in a search) are
        composed and capped there. ``None`` gives each fit fresh ledgers.
    privacy_unit : {"record", "party"}, default="record"
        What is protected. ``"record"``: one row of one party (neighbouring
        datasets add or remove a row). ``"party"``: a party's whole
        contribution, as in user-level DP: every sensitivity is multiplied
        by ``max_party_rows`` and a party with more rows refuses to take
        part, so the noise is that many times larger.
    max_party_rows : int, default=None
        Public cap on a party's rows; required with ``privacy_unit="party"``
        when ``epsilon`` is finite.
    strategy : str, default="auto"
        How the model trains; ``"auto"`` picks each family's default. Trees
        and forests accept ``"random"``, ``"random_disjoint"``, ``"greedy"``
        and ``"greedy_disjoint"`` (see ``docs/estimators.md``). Iterative
        linear models (the linear classifiers, ``SGDRegressor``) accept
        ``"newton"``, ``"gradient"`` and ``"fedavg"``. ``"newton"``: each
        round releases the summed gradient and Hessian of the loss and takes
        a Newton step. ``"gradient"``: each
        round releases the gradient only (full-batch gradient descent).
        ``"fedavg"``: each party fits the estimator on its own rows from the
        global model, and the clipped updates are averaged with equal
        weights. ``"auto"`` picks ``"newton"``, the most accurate at every
        epsilon measured (``benchmarks/RESULTS.md``).
    max_rounds : int, default=None
        Rounds of an iterative model; the budget is split over them before
        the first (with pure DP, Newton releases the Hessian once and then a
        gradient and a small curvature per round; see ``docs/estimators.md``).
        ``None``: when ``epsilon`` is finite, Newton takes 4 rounds (8 with
        pure DP and ``epsilon`` of 0.5 or more left for the rounds), gradient
        descent 20 and FedAvg 5. Without noise: the estimator's ``max_iter``
        (FedAvg: 20). Rounds stop early, spending nothing more, once no
        coefficient moves by more than the estimator's ``tol * 1e-4``.
    max_time : float, default=None
        Seconds of training after which an iterative model (the linear
        models' rounds, boosting's iterations) starts no further round: the
        round in progress finishes, and the budget of the rounds not run is
        left unspent. ``None``: no limit.
    verbose : int, default=0
        Show a progress bar over rounds when positive, and over the parties
        of each release when above 1.
    n_jobs : int, default=None
        Number of joblib workers for party-side work.
    random_state : int, RandomState instance or None, default=None
        ``None`` seeds the noise from the operating system's cryptographic
        source. A value makes the noise reproducible, for simulation only
        (a :class:`~fedsk.privacy.SeededNoiseWarning` says so).

    Attributes
    ----------
    estimator_ : estimator object
        The fitted scikit-learn estimator.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when they are all strings.
    classes_ : ndarray of shape (n_classes,)
        Class labels, for classifiers.
    ledgers_ : list of BudgetLedger
        The ledgers of the parties this fit charged.
    epsilon_spent_ : float
        Epsilon this fit spent (at ``delta``).
    timings_ : dict
        Seconds spent on the parties' side (``"parties"``) and in
        aggregation (``"aggregation"``), summed over the fit's releases.

    Notes
    -----
    Unit of privacy: one record (row) of one party; neighbouring datasets
    add or remove one record. Every record is clipped into the public region
    before any statistic is computed, which bounds each statistic's
    sensitivity. Statistics are rounded to a grid and released with integer
    noise (discrete Laplace or discrete Gaussian), so no floating-point
    attack applies. Parties hold disjoint records, so a release charges each
    party its full epsilon (parallel composition), and an algorithm's
    releases split this fit's budget before the first is made.

    References
    ----------
    .. [1] C. Canonne, G. Kamath, T. Steinke, "The discrete Gaussian for
       differential privacy", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from fedsk import FederatedEstimator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, size=(1000, 3))
    >>> y = X @ [1.0, 2.0, 3.0]
    >>> parties = np.repeat(["north", "south"], 500)
    >>> model = FederatedEstimator(Ridge(alpha=1e-3), epsilon=float("inf"))
    >>> model.fit(X, y, parties=parties).estimator_.coef_.round(2)
    array([1., 2., 3.])
    """

    _parameter_constraints = {
        "estimator": [object],
        "epsilon": [Interval(numbers.Real, 0, math.inf, closed="right")],
        "delta": [Interval(numbers.Real, 0, 1, closed="left")],
        "bounds": [tuple, list, StrOptions({"private"}), None],
        "binary_features": ["array-like", None],
        "data_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "y_bounds": [tuple, list, StrOptions({"private"}), None],
        "classes": ["array-like", None],
        "trust": [StrOptions(set(TRUST_MODELS))],
        "privacy_unit": [StrOptions({"record", "party"})],
        "max_party_rows": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "strategy": [StrOptions(set(STRATEGIES))],
        "max_rounds": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "verbose": ["verbose"],
        "accountant": [PrivacyAccountant, None],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
    }

    # `parties` is data (like `groups`): requested by default, so metadata
    # routing delivers it to every FederatedEstimator step of a Pipeline.
    __metadata_request__fit = {"parties": True}
    __metadata_request__fit_transform = {"parties": True}

    def __init__(
        self,
        estimator,
        *,
        epsilon=1.0,
        delta=0.0,
        bounds=None,
        binary_features=None,
        data_norm=None,
        y_bounds=None,
        classes=None,
        trust="central",
        privacy_unit="record",
        max_party_rows=None,
        strategy="auto",
        max_rounds=None,
        max_time=None,
        verbose=0,
        accountant=None,
        n_jobs=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.epsilon = epsilon
        self.delta = delta
        self.bounds = bounds
        self.binary_features = binary_features
        self.data_norm = data_norm
        self.y_bounds = y_bounds
        self.classes = classes
        self.trust = trust
        self.privacy_unit = privacy_unit
        self.max_party_rows = max_party_rows
        self.strategy = strategy
        self.max_rounds = max_rounds
        self.max_time = max_time
        self.verbose = verbose
        self.accountant = accountant
        self.n_jobs = n_jobs
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, parties=None):
        """Fit the wrapped estimator across parties.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or Federation
            Pooled rows (simulation) or a :class:`~fedsk.Federation` whose
            parties hold their own rows.
        y : array-like of shape (n_samples,), default=None
            Targets, with pooled rows.
        parties : array-like of shape (n_samples,), default=None
            The party of each row. ``None`` treats all rows as one party
            (centralized DP).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        algorithm = get_algorithm(self.estimator)
        validate_estimator_params(self.estimator)
        finite = math.isfinite(self.epsilon)
        pooled_y = None
        if isinstance(X, Federation):
            if y is not None or parties is not None:
                raise ValueError(
                    "With a Federation, pass neither y nor parties: the parties "
                    "hold their own targets."
                )
            federation = X
            accountant = self.accountant
        else:
            if algorithm.needs_y != "none" and y is None:
                raise ValueError(
                    f"{type(self.estimator).__name__} requires y to be passed, "
                    "but the target y is None."
                )
            warn_if_pooled_steps_before(self)
            federation = Federation.from_labels(
                X, y, parties, accountant=self.accountant, n_jobs=self.n_jobs
            )
            accountant = None  # the parties' ledgers are the accountant's
            pooled_y = None if y is None else np.ravel(np.asarray(y))
            if finite and self.delta * _num_rows(X) >= 1:
                raise ValueError(
                    f"delta={self.delta!r} is not below 1 / the number of rows "
                    f"({_num_rows(X)}): a release could expose a whole record. "
                    "Use a smaller delta (below 1 / n_samples)."
                )
        if algorithm.needs_y != "none":
            federation.require_targets(numeric=algorithm.needs_y == "bounded")
        clipping = self._clipping(federation.n_features_in_, algorithm, finite)
        classes = None
        if algorithm.needs_y == "labels":
            classes = self._public_classes(pooled_y, finite)

        fit_ledger = BudgetLedger(
            type(self.estimator).__name__,
            epsilon=self.epsilon,
            delta=self.delta if finite else None,
        )
        session = FitSession(
            federation,
            estimator_name=type(self.estimator).__name__,
            epsilon=self.epsilon,
            delta=self.delta,
            clipping=clipping,
            trust=self.trust,
            seed_sequence=(
                noise_seed_sequence(self.random_state)
                if finite and self.random_state is not None
                else None  # each party draws from its own secret
            ),
            fit_ledger=fit_ledger,
            accountant=accountant,
            strategy=self.strategy,
            max_rounds=self.max_rounds,
            max_time=self.max_time,
            verbose=self.verbose,
            group_size=self._group_size(finite),
            binary_features=self._binary_mask(federation),
        )
        session.check_budget()
        ledgers = [p.ledger for p in federation.parties]
        if not finite and (
            clipping.lower is not None
            or clipping.data_norm is not None
            or clipping.y_lower is not None
        ):
            warn_if_clipping_changes_most_rows(session)
        private_y = self.y_bounds == "private" and algorithm.needs_y == "bounded"
        if finite and (self.bounds == "private" or private_y):
            session = self._with_private_bounds(session, algorithm)

        estimator = clone(self.estimator)
        if classes is None:
            estimator = algorithm.fit(estimator, session)
        else:
            estimator = algorithm.fit(estimator, session, classes)
        # fitted attributes only once the fit has succeeded
        self.n_features_in_ = estimator.n_features_in_ = federation.n_features_in_
        if federation.feature_names_in_ is not None:
            self.feature_names_in_ = federation.feature_names_in_
            estimator.feature_names_in_ = federation.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if finite and self.bounds == "private":
            self.bounds_ = (session.clipping.lower, session.clipping.upper)
        self.ledgers_ = ledgers
        self.fit_ledger_ = fit_ledger
        self.estimator_ = estimator
        self.epsilon_spent_ = fit_ledger.spent()[0]
        self.timings_ = dict(session.timings)
        return self

    def _group_size(self, finite):
        """Records per unit of privacy."""
        if self.privacy_unit == "record" or not finite:
            return 1
        if self.max_party_rows is None:
            raise ValueError(
                "privacy_unit='party' needs max_party_rows: the public cap on a "
                "party's rows, which scales every sensitivity."
            )
        return self.max_party_rows

    def _binary_mask(self, federation):
        """``binary_features`` as a boolean mask over the features (or None)."""
        if self.binary_features is None:
            return None
        if not isinstance(self.bounds, tuple | list):
            raise ValueError(
                "binary_features needs bounds=(lower, upper): a binary feature "
                "takes the two values of its public bounds."
            )
        n = federation.n_features_in_
        listed = np.asarray(self.binary_features)
        if listed.size == 0:  # none (numpy reads an empty list as floats)
            listed = listed.astype(np.intp)
        if listed.dtype == bool:
            if listed.shape != (n,):
                raise ValueError(
                    f"binary_features as a boolean mask needs {n} entries (one "
                    f"per feature); got shape {listed.shape}."
                )
            return listed
        names = federation.feature_names_in_
        if listed.dtype.kind in "USO":
            if names is None:
                raise ValueError(
                    "binary_features lists names, but the columns have none; "
                    "pass feature indices or a boolean mask."
                )
            unknown = sorted(set(listed.ravel().tolist()) - set(names))
            if unknown:
                raise ValueError(f"binary_features: no feature is named {unknown}.")
            return np.isin(names, listed)
        if listed.dtype.kind not in "iu" or listed.ndim != 1:
            raise ValueError(
                "binary_features must be feature indices, a boolean mask or "
                f"feature names; got {self.binary_features!r}."
            )
        outside = listed[(listed < 0) | (listed >= n)]
        if outside.size:
            raise ValueError(
                f"binary_features: indices {outside.tolist()} are outside [0, {n})."
            )
        mask = np.zeros(n, dtype=bool)
        mask[listed] = True
        return mask

    def _public_classes(self, pooled_y, finite):
        """The public label set: ``classes=``, or (noise-free fits on pooled
        rows only) the labels of ``y``, which the caller holds.

        Nothing about the parties' labels is read: a label outside
        ``classes`` is dropped on the party's side.
        """
        if self.classes is None:
            if finite or pooled_y is None:
                raise ValueError(
                    "classes is required: pass classes=[...] with the public label "
                    "set. fedsk reads no label from the parties' rows (it would "
                    "reveal which labels they hold); only a noise-free fit "
                    "(epsilon=inf) on pooled rows takes them from y. Nothing was "
                    "released or charged."
                )
            classes = np.unique(pooled_y)
        else:
            classes = np.unique(np.asarray(self.classes))
            if pooled_y is not None and not np.isin(pooled_y, classes).all():
                warnings.warn(
                    "y has labels that are not in classes; those rows are "
                    "dropped on the parties' side.",
                    PrivacyWarning,
                    stacklevel=3,
                )
        for labels in (classes, pooled_y):
            if labels is not None and type_of_target(labels) == "continuous":
                raise ValueError(
                    "Unknown label type: continuous. A classifier needs discrete "
                    "class labels."
                )
        if classes.size < 2:
            raise ValueError(
                "A classifier needs at least two classes, but the data has one "
                "class only."
            )
        return classes

    def _clipping(self, n_features, algorithm, finite):
        lower = upper = y_lower = y_upper = None
        if isinstance(self.bounds, tuple | list):
            lower, upper = _checked_bounds("bounds", self.bounds, n_features)
        if isinstance(self.y_bounds, tuple | list) and algorithm.needs_y == "bounded":
            y_lower, y_upper = _checked_bounds("y_bounds", self.y_bounds, None)
        if finite:
            if self.bounds is None and self.data_norm is None:
                raise ValueError(
                    "bounds is required when epsilon is finite: pass "
                    "bounds=(lower, upper) with public per-feature ranges (or "
                    "data_norm=...), or bounds='private' to estimate them with "
                    "a DP histogram charged to the budget."
                )
            if algorithm.needs_y == "bounded" and self.y_bounds is None:
                raise ValueError(
                    "y_bounds is required for a regressor when epsilon is finite: "
                    "pass y_bounds=(lower, upper) with the public target range, "
                    "or y_bounds='private'."
                )
        return Clipping(lower, upper, self.data_norm, y_lower, y_upper)

    def _with_private_bounds(self, session, algorithm):
        include_target = algorithm.needs_y == "bounded" and self.y_bounds == "private"
        lower, upper = private_bounds(
            session, PRIVATE_BOUNDS_SHARE, include_target=include_target
        )
        clipping = session.clipping
        n = session.n_features
        if self.bounds == "private":
            clipping = Clipping(
                lower[:n],
                upper[:n],
                clipping.data_norm,
                clipping.y_lower,
                clipping.y_upper,
            )
        if include_target:
            clipping = Clipping(
                clipping.lower,
                clipping.upper,
                clipping.data_norm,
                float(lower[n]),
                float(upper[n]),
            )
        session.clipping = clipping
        session.share = 1 - PRIVATE_BOUNDS_SHARE
        return session

    def privacy_report(self):
        """Return the privacy report of the parties this estimator charged.

        Returns
        -------
        report : PrivacyReport
            Per party and per estimator: epsilon and delta spent and
            remaining, releases and mechanisms. Print it, or use
            ``to_dict``, ``to_json`` or ``to_frame``.
        """
        check_is_fitted(self, "ledgers_")
        return PrivacyReport(self.ledgers_)

    @property
    def classes_(self):
        """Class labels of the fitted classifier."""
        return self.estimator_.classes_

    def _validated(self, X):
        check_is_fitted(self)
        validate_data(self, X, reset=False, ensure_all_finite=True)
        return X

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the fitted estimator."""
        X = self._validated(X)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the fitted estimator."""
        X = self._validated(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the fitted estimator."""
        X = self._validated(X)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted estimator."""
        X = self._validated(X)
        return self.estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """Transform with the fitted estimator."""
        X = self._validated(X)
        return self.estimator_.transform(X)

    @available_if(_estimator_has("transform"))
    def fit_transform(self, X, y=None, *, parties=None):
        """Fit across parties, then transform ``X`` (pooled rows only)."""
        return self.fit(X, y, parties=parties).transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X):
        """Inverse-transform with the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.inverse_transform(X)

    @available_if(_estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the fitted estimator (accuracy or R^2) on public test data."""
        X = self._validated(X)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.transformer_tags = inner.transformer_tags
        tags.target_tags.required = inner.target_tags.required
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


def _checked_bounds(name, bounds, n_features):
    if len(bounds) != 2:
        raise ValueError(
            f"{name} must be a pair (lower, upper); got {len(bounds)} items."
        )
    lower, upper = (np.asarray(b, dtype=float) for b in bounds)
    shape = () if n_features is None else (n_features,)
    try:
        lower, upper = np.broadcast_to(lower, shape), np.broadcast_to(upper, shape)
    except ValueError:
        raise ValueError(
            f"{name}: lower and upper must be floats or arrays of shape {shape}; "
            f"got shapes {np.shape(bounds[0])} and {np.shape(bounds[1])}."
        ) from None
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise ValueError(f"{name} must be finite.")
    if np.any(lower >= upper):
        raise ValueError(f"{name}: every lower bound must be below its upper bound.")
    return lower.astype(float), upper.astype(float)


def _num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
