"""Every module of reprl's packages imports on its own, first, in a fresh interpreter: a user's
``from envs import make_env`` must not depend on some other package having been imported
before (an import cycle shows only in the order that enters it from the wrong side)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "envs", "replay", "wrappers", "representation")

# Run in one fresh interpreter: the third-party libraries are imported once, then each module is
# imported in a child forked from that state, so it meets none of reprl's modules loaded.
CHECK = textwrap.dedent("""
    import os, sys
    import gymnasium, numpy, torch  # noqa: F401  (not reprl's: shared by the forked children)
    failed = []
    for module in sys.argv[1:]:
        pid = os.fork()
        if pid == 0:
            try:
                __import__(module)
            except BaseException as error:
                print(f"{module}: {type(error).__name__}: {error}", flush=True)
                os._exit(1)
            os._exit(0)
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            failed.append(module)
    sys.exit(1 if failed else 0)
""")


def module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = module_names()
    assert "envs" in names and "representation.gnn.layers" in names and len(names) > 100
    result = subprocess.run([sys.executable, "-c", CHECK, *names], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
