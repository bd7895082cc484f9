"""The same measurements on two checkouts of clinsynth, alternately (a refactor's "no figure
worse than its noise" check).

Each round runs, for each checkout in turn, a fresh process with ``PYTHONPATH=<checkout>/src``
and this environment's packages: the Gaussian copula's fit on support2, a 200,000-row sample,
and a 5-epoch TVAE fit, in CPU seconds (``time.process_time``, one OpenMP thread), with the
mean of the first numeric column of the sample (the same rows give the same mean).

Run (needs ../shared/data):
    git worktree add --detach ../before <commit>
    .venv/bin/python benchmarks/bench_checkouts.py ../before . --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown, shared_path  # noqa: E402

_MEASURE = """
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from clinsynth import GaussianCopulaSynthesizer, Metadata, TVAESynthesizer
df = pd.read_csv(sys.argv[1])
md = Metadata.detect_from_dataframe(df)
fit, sample = [], []
for _ in range(3):
    c = time.process_time(); m = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    fit.append(time.process_time() - c)
    c = time.process_time(); out = m.sample(200_000); sample.append(time.process_time() - c)
c = time.process_time(); TVAESynthesizer(md, epochs=5, random_state=0).fit(df)
tvae = time.process_time() - c
print(json.dumps({"copula fit CPU s": statistics.median(fit),
                  "sample 200k CPU s": statistics.median(sample),
                  "tvae 5 epochs CPU s": tvae,
                  "sample mean": float(out.select_dtypes("number").iloc[:, 0].mean())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs=2, help="two clinsynth checkouts (folders)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = shared_path("support2", "support2.csv")
    rows = []
    for round_ in range(args.rounds):
        for checkout in args.checkouts:
            env = dict(os.environ, PYTHONPATH=str(Path(checkout).resolve() / "src"))
            env["OMP_NUM_THREADS"] = "1"
            out = (
                subprocess.run(
                    [sys.executable, "-c", _MEASURE, str(data)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            rows.append({"round": round_ + 1, "checkout": checkout, **json.loads(out)})
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(markdown(rows))


if __name__ == "__main__":
    main()
