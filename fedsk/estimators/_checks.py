"""Checks that a wrapped estimator's hyperparameters can be honoured."""


def reject_unsupported(estimator, **supported):
    """Raise if a hyperparameter has a value the federated algorithm ignores.

    Parameters
    ----------
    estimator : estimator instance
    **supported : callable
        ``name=predicate``: the value of ``name`` must satisfy ``predicate``.
    """
    params = estimator.get_params(deep=False)
    for name, ok in supported.items():
        if not ok(params[name]):
            raise ValueError(
                f"{type(estimator).__name__}({name}={params[name]!r}) is not "
                f"supported by its federated algorithm; use the default "
                f"{name}."
            )
