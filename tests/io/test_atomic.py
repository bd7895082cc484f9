"""Crash safety of every write: a kill at any moment leaves the old copy or the new one at the
target path, never nothing; what a killed write leaves behind is recognisable and cleaned by the
next write or load; the system's write errors are one clear DataError."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.cli import main
from clinsynth.errors import DataError
from clinsynth.io import write_table
from clinsynth.io._atomic import atomic_path, leftovers, recover

posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids: POSIX")

# Writes a folder "version" = new over TARGET and kills itself with SIGKILL at one moment:
# right after the atomic exchange, or between the two renames of the fallback.
_KILLED_REPLACE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from clinsynth.io import _atomic

    target, mode = Path(sys.argv[1]), sys.argv[2]
    _atomic.USE_EXCHANGE = mode == "exchange"

    def die_after(function, when):
        def wrapped(*args, **kwargs):
            out = function(*args, **kwargs)
            if when(*args):
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return wrapped

    if mode == "exchange":
        _atomic._exchange = die_after(_atomic._exchange, lambda *a: True)
    else:  # the first rename moves the old copy aside
        os.replace = die_after(os.replace, lambda src, dst: Path(src) == target)
    with _atomic.atomic_path(target, directory=True) as tmp:
        (tmp / "version").write_text("new")
    """
)


def _run_killed(script: str, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    return run


def _old_folder(target: Path) -> None:
    target.mkdir()
    (target / "version").write_text("old")


@posix_only
def test_killed_exchange_leaves_a_complete_copy_and_recognisable_leftovers(tmp_path):
    from clinsynth.io._atomic import _exchange

    probe_a, probe_b = tmp_path / "a", tmp_path / "b"
    probe_a.mkdir(), probe_b.mkdir()
    if not _exchange(probe_a, probe_b):
        pytest.skip("this file system has no atomic exchange")
    target = tmp_path / "model"
    _old_folder(target)
    _run_killed(_KILLED_REPLACE, str(target), "exchange")
    assert (target / "version").read_text() == "new"  # never an empty target path
    stale = leftovers(target)
    assert [kind for _, kind in stale] == ["tmp"]  # the old copy, under a temporary name
    assert stale[0][0].name.startswith(".model.tmp-")
    with atomic_path(target, directory=True) as tmp:  # the next write cleans it
        (tmp / "version").write_text("newer")
    assert (target / "version").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "model"]


@posix_only
@pytest.mark.parametrize("schema", [False, True], ids=["table", "schema"])
def test_kill_between_the_two_renames_is_recovered_by_the_next_load(tmp_path, schema):
    """Without an atomic exchange the old model sits beside the path after a kill between the
    two renames; loading (or writing) the path puts it back."""
    from clinsynth.multitable import HMASynthesizer

    df = pd.DataFrame({"age": np.arange(60) % 40 + 20, "sex": ["F", "M", "M"] * 20})
    target = tmp_path / "model"
    if schema:
        tables = {"patients": df.assign(patient_id=np.arange(60))}
        model = HMASynthesizer(Metadata.detect_from_dataframes(tables), random_state=0)
        model.fit(tables).save(target)
    else:
        md = Metadata.detect_from_dataframe(df)
        GaussianCopulaSynthesizer(md, random_state=0).fit(df).save(target)
    manifest = (target / "manifest.json").read_text()
    _run_killed(_KILLED_REPLACE, str(target), "rename")
    assert not target.exists()
    assert [kind for _, kind in leftovers(target)].count("old") == 1
    model = clinsynth.load(target)  # the next start recovers the old copy
    assert (target / "manifest.json").read_text() == manifest
    assert isinstance(model, HMASynthesizer) == schema
    assert len(model.sample(scale=0.1) if schema else model.sample(5)) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # the new copy's temp is gone


@posix_only
def test_kill_during_a_file_write_leaves_a_recognisable_temp_that_the_next_write_removes(
    tmp_path,
):
    target = tmp_path / "big.csv"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from clinsynth.io._atomic import atomic_path

        with atomic_path(sys.argv[1]) as tmp:
            tmp.write_text("age\\n1\\n")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    _run_killed(script, str(target))
    assert not target.exists()
    stale = leftovers(target)
    assert len(stale) == 1 and stale[0][0].name.startswith(".big.csv.tmp-")
    write_table(pd.DataFrame({"age": [1, 2]}), target)
    assert leftovers(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]


@posix_only
@pytest.mark.slow
def test_killed_sample_command_leaves_nothing_the_next_sample_keeps(tmp_path, capsys):
    """The end-to-end case of the issue: `clinsynth sample -o big.csv` killed while writing."""
    df = pd.DataFrame({"age": np.arange(200) % 70 + 20, "bmi": np.round(np.arange(200) / 7, 1)})
    GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(df), random_state=0).fit(df).save(
        tmp_path / "model"
    )
    out = tmp_path / "big.csv"
    cli = "import sys; from clinsynth.cli import main; sys.exit(main())"
    args = ["sample", str(tmp_path / "model"), "-n", "3000000", "-o", str(out)]
    proc = subprocess.Popen([sys.executable, "-c", cli, *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not leftovers_or_temps(tmp_path) and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip("the sample finished before it could be killed")
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    temps = leftovers_or_temps(tmp_path)
    assert temps and all(p.startswith(".big.csv.tmp-") for p in temps)
    assert main([*args[:3], "10", "-o", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "model"]


def leftovers_or_temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".big.csv.")]


def test_temps_of_a_live_process_are_left_alone(tmp_path):
    target = tmp_path / "t.csv"
    mine = tmp_path / f".t.csv.tmp-{os.getpid()}-abc.csv"
    mine.write_text("being written")
    assert leftovers(target) == []
    assert not recover(target)
    assert mine.exists()


def test_untagged_old_temps_expire(tmp_path):
    """Temps named by earlier versions (no process id) are removed once an hour old."""
    target = tmp_path / "t.csv"
    old = tmp_path / ".t.csv.tmp-k3j2h1.csv"
    old.write_text("x")
    assert leftovers(target) == []
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert [p for p, _ in leftovers(target)] == [old]


def test_write_errors_are_one_clear_data_error(tmp_path):
    blocker = tmp_path / "file.csv"
    blocker.write_text("a\n1\n")
    with pytest.raises(DataError, match="is a file, not a folder"):
        write_table(pd.DataFrame({"a": [1]}), blocker / "out.csv")
    if Path("/proc/self").is_dir():  # a folder nobody can create entries in
        with pytest.raises(DataError, match="Cannot write '/proc/clinsynth-test"):
            write_table(pd.DataFrame({"a": [1]}), "/proc/clinsynth-test/sub/out.csv")


def test_folders_made_for_a_failed_write_are_removed(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folders_are_made_for_a_successful_write(tmp_path):
    target = tmp_path / "new" / "out.csv"
    write_table(pd.DataFrame({"a": [1, 2]}), target)
    assert pd.read_csv(target)["a"].tolist() == [1, 2]
