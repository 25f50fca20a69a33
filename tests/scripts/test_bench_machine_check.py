"""bench.py counts the threads that keep cores busy before its first case."""
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench  # noqa: E402


def test_the_median_of_the_runnable_threads_less_this_one(monkeypatch):
    running = iter([3, 1, 5, 2, 2])  # Linux counts the reading thread too

    def proc_stat(path):
        assert path == "/proc/stat"
        return io.StringIO(f"cpu  10 0 5 100 0 0 0 0 0 0\nprocs_running {next(running)}\nprocs_blocked 0\n")

    monkeypatch.setattr(bench, "open", proc_stat, raising=False)
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    assert bench.other_runnable_threads(samples=5) == 1  # the median of 2, 0, 4, 1, 1


def test_none_where_the_system_keeps_no_count(monkeypatch):
    def missing(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(bench, "open", missing, raising=False)
    assert bench.other_runnable_threads() is None
