"""Print one of README.md's two fresh-machine commands, exactly as written.

.ci/run runs them verbatim in a fresh virtual environment::

    python .ci/readme_commands.py demo   # the block that runs examples/demo.py
    python .ci/readme_commands.py test   # the block that runs the tests

The commands are the first two ```bash blocks of README.md: the first must run
the demo, the second the tests. Anything else is an error, so that a README
edit cannot silently change what CI checks.
"""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def fresh_machine_blocks(text):
    """The demo block and the test block, in README order."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)
    if len(blocks) < 2:
        raise SystemExit("README.md: expected two ```bash blocks at the top")
    demo, test = blocks[:2]
    if "examples/demo.py" not in demo:
        raise SystemExit("README.md: the first ```bash block must run examples/demo.py")
    if "pytest" not in test:
        raise SystemExit("README.md: the second ```bash block must run the tests")
    return {"demo": demo, "test": test}


def main(argv):
    if len(argv) != 1 or argv[0] not in ("demo", "test"):
        raise SystemExit("usage: readme_commands.py demo|test")
    sys.stdout.write(fresh_machine_blocks(README.read_text(encoding="utf-8"))[argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
