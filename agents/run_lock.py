"""One training process per run folder: a second one (``--resume`` of a run still training, a
grid restarted while its old workers live) would interleave its logs and checkpoints with the
first's. The Runner holds an advisory lock on ``RUN_DIR/.lock`` while it trains; the operating
system releases it when the process ends, however it ends, so a crashed run never stays locked.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


@contextlib.contextmanager
def exclusive_run_folder(run_dir: Path) -> Iterator[None]:
    """Holds ``run_dir``'s lock for the block; raises ValueError at once if another process holds
    it. Where the platform or file system has no advisory locks (Windows, some network file
    systems), the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{run_dir} is in use by another training process: let it finish or stop it, "
                             f"then resume") from None
        except OSError:  # a file system without locks
            pass
        yield
