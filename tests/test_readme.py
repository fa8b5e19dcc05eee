"""Every Python code block in README.md runs as written."""

import re
import warnings
from pathlib import Path

import sklearn

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    namespace = {}
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    report = namespace["fed"].privacy_report().to_dict()
    assert [p["epsilon_spent"] for p in report["parties"]] == [1.0, 1.0]
