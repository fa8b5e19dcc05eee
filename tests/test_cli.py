"""The ``fedsk`` command line and the HTML privacy report."""

import json
import shutil
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from fedsk import FederatedEstimator
from fedsk.cli import main, model_names


def _write_parties(directory):
    rng = np.random.default_rng(0)
    paths = []
    for name in ("north", "south"):
        n = 600
        x = rng.normal(size=(n, 2))
        kind = rng.choice(["a", "b"], n)
        y = ((x[:, 0] + (kind == "a")) > 0.5).astype(int)
        path = directory / f"{name}.csv"
        pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "kind": kind, "y": y}).to_csv(
            path, index=False
        )
        paths.append(str(path))
    categories = directory / "categories.json"
    categories.write_text(json.dumps({"kind": ["a", "b"]}))
    bounds = directory / "bounds.json"
    bounds.write_text(
        json.dumps({"x1": [-4, 4], "x2": [-4, 4], "kind=a": [0, 1], "kind=b": [0, 1]})
    )
    return paths, str(categories), str(bounds)


def _fit_args(paths, categories, bounds, out, *extra):
    args = ["fit", "--target", "y", "--model", "logistic_regression"]
    for path in paths:
        args += ["--party", path]
    return [*args, "--categories", categories, "--bounds", bounds, "--out", out, *extra]


def test_fit_then_report(tmp_path, capsys):
    paths, categories, bounds = _write_parties(tmp_path)
    out = str(tmp_path / "model.joblib")
    code = main(_fit_args(paths, categories, bounds, out, "--classes", "0,1"))
    assert code == 0
    model = joblib.load(out)
    assert isinstance(model, FederatedEstimator)
    assert list(model.feature_names_in_) == ["x1", "x2", "kind=a", "kind=b"]
    assert model.epsilon_spent_ == pytest.approx(1.0)
    capsys.readouterr()
    assert main(["report", out, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["party"] for p in report["parties"]] == ["north", "south"]
    html = tmp_path / "report.html"
    assert main(["report", out, "--format", "html", "--output", str(html)]) == 0
    assert "<svg" in html.read_text() and "north" in html.read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--categories"], "need their categories"),
        (["--bounds"], "bounds is required"),
        (["--target"], "no target column"),
    ],
)
def test_errors_are_one_line_and_a_nonzero_exit(tmp_path, capsys, change, message):
    paths, categories, bounds = _write_parties(tmp_path)
    args = _fit_args(paths, categories, bounds, str(tmp_path / "m.joblib"))
    at = args.index(change[0])
    if change[0] == "--target":
        args[at + 1] = "nope"
    else:
        del args[at : at + 2]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_report_of_a_missing_file(capsys):
    assert main(["report", "nowhere.joblib"]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_every_command_has_help():
    for command in ([], ["fit"], ["report"], ["demo"]):
        result = subprocess.run(
            [sys.executable, "-m", "fedsk.cli", *command, "--help"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0 and "usage: fedsk" in result.stdout


def test_demo_runs(capsys):
    assert main(["demo"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_model_names_cover_every_supported_estimator():
    names = model_names()
    assert names["logistic_regression"].__name__ == "LogisticRegression"
    assert names["gaussian_nb"].__name__ == "GaussianNB"
    assert names["linear_svc"].__name__ == "LinearSVC"
    assert names["sgd_classifier"].__name__ == "SGDClassifier"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_html_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "no chromium on this machine: .ci/run installs Debian's chromium "
            "package; install it to run this check"
        )
    paths, categories, bounds = _write_parties(tmp_path)
    out = str(tmp_path / "model.joblib")
    assert main(_fit_args(paths, categories, bounds, out, "--classes", "0,1")) == 0
    page = tmp_path / "report.html"
    joblib.load(out).privacy_report().to_html(page)
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "Party north" in dom and "Party south" in dom
    assert "<polyline" in dom and "glm_derivatives" in dom


def test_version(capsys):
    import fedsk

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"fedsk {fedsk.__version__}"
    result = subprocess.run(
        [sys.executable, "-m", "fedsk.cli", "--version"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"fedsk {fedsk.__version__}"


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a model\n",
        b"x1,x2,y\n0.5,1.0,1\n",
        b"\x80\x04\x95garbage that starts like a pickle",
        b"",
        "a pickle of something else",
    ],
    ids=["text", "csv", "broken-pickle", "empty", "other-pickle"],
)
def test_report_of_a_file_that_is_not_a_model(tmp_path, capsys, content):
    path = tmp_path / "not-a-model.joblib"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        joblib.dump({"what": content}, path)
    assert main(["report", str(path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and "fedsk fit" in err
    assert captured.out == ""


def test_report_of_a_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a directory" in err


def test_report_subprocess_prints_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("meeting notes, not a model\n")
    result = subprocess.run(
        [sys.executable, "-m", "fedsk.cli", "report", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and str(path) in result.stderr


@pytest.fixture
def federations(monkeypatch):
    """Every Federation the command builds, to read its parties' ledgers."""
    import fedsk.cli

    built = []

    class Recorded(fedsk.cli.Federation):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(fedsk.cli, "Federation", Recorded)
    return built


def _spent(federations):
    return [
        party["epsilon_spent"]
        for federation in federations
        for party in federation.privacy_report().to_dict()["parties"]
    ]


@pytest.mark.parametrize("where", ["missing-directory", "a-directory", "a-file-dir"])
def test_unwritable_out_is_refused_before_any_budget_is_spent(
    tmp_path, capsys, federations, where
):
    paths, categories, bounds = _write_parties(tmp_path)
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    out = {
        "missing-directory": tmp_path / "no" / "such" / "dir" / "model.joblib",
        "a-directory": tmp_path,
        "a-file-dir": blocker / "model.joblib",
    }[where]
    args = _fit_args(paths, categories, bounds, str(out), "--classes", "0,1")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"cannot write --out {out}" in err and "no budget was spent" in err
    assert all(spent == 0 for spent in _spent(federations))
    assert not (tmp_path / "no").exists()

    # the same fit with a writable --out spends: the ledgers above were real
    good = tmp_path / "model.joblib"
    args = _fit_args(paths, categories, bounds, str(good), "--classes", "0,1")
    assert main(args) == 0
    assert _spent(federations)[-2:] == [pytest.approx(1.0)] * 2
    assert good.stat().st_size > 0


def test_failed_fit_leaves_no_empty_output_file(tmp_path, capsys):
    paths, categories, bounds = _write_parties(tmp_path)
    out = tmp_path / "model.joblib"
    args = _fit_args(paths, categories, bounds, str(out))
    del args[args.index("--bounds") : args.index("--bounds") + 2]
    assert main(args) == 2
    assert "bounds is required" in capsys.readouterr().err
    assert not out.exists()


def test_fit_on_plain_numeric_csvs(tmp_path, capsys):
    rng = np.random.default_rng(1)
    paths = []
    for name in ("clinic_a", "clinic_b", "clinic_c"):
        x = rng.uniform(0, 10, size=(300, 2))
        y = x @ [1.0, -2.0] + rng.normal(0, 1, 300)
        path = tmp_path / f"{name}.csv"
        np.savetxt(
            path, np.column_stack([x, y]), delimiter=",", header="a,b,y", comments=""
        )
        paths.append(str(path))
    bounds = tmp_path / "bounds.json"
    bounds.write_text(json.dumps({"a": [0, 10], "b": [0, 10]}))
    out = tmp_path / "ridge.joblib"
    args = [
        "fit",
        "--target",
        "y",
        "--model",
        "ridge",
        "--bounds",
        str(bounds),
        "--y-bounds=-25,15",
        "--epsilon",
        "inf",
        "--out",
        str(out),
    ]
    for path in paths:
        args += ["--party", path]
    assert main(args) == 0
    model = joblib.load(out)
    np.testing.assert_allclose(model.estimator_.coef_, [1.0, -2.0], atol=0.1)
    assert "clinic_a" in capsys.readouterr().out
