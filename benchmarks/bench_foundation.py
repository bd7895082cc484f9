"""Foundation benchmark: transformer and Gaussian copula on RHC and a 200k-row table.

Run:  .venv/bin/python benchmarks/bench_foundation.py [--rows 200000] [--sample 1000000]

Prints seconds (median of 3) and peak memory for the transformer's fit / transform / inverse and
the copula's fit / sample, plus the copula's quality on SDMetrics' score (RHC 70% split). SDV 2.0's
GaussianCopula measured on this machine (issue 2): fit 5.3 s, 100k rows in 9.6 s, quality 0.900.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import load_rhc, markdown, peak_mib, sdmetrics_quality, split, timed

from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.transform import TableTransformer


def bench_table(name, df, md, sample_rows):
    rows = []
    tt = TableTransformer(md)
    t_fit, _ = timed(lambda: tt.fit(df))
    t_tr, enc = timed(lambda: tt.transform(df))
    t_inv, _ = timed(lambda: tt.inverse_transform(enc, random_state=0))
    rows.append(
        {
            "table": name,
            "step": "transformer fit (mode-specific)",
            "seconds": t_fit,
            "peak MiB": peak_mib(lambda: TableTransformer(md).fit(df)),
        }
    )
    rows.append(
        {
            "table": name,
            "step": "transformer transform",
            "seconds": t_tr,
            "peak MiB": peak_mib(lambda: tt.transform(df)),
        }
    )
    rows.append(
        {
            "table": name,
            "step": "transformer inverse",
            "seconds": t_inv,
            "peak MiB": peak_mib(lambda: tt.inverse_transform(enc, random_state=0)),
        }
    )
    model = GaussianCopulaSynthesizer(md, random_state=0)
    t_cfit, _ = timed(lambda: model.fit(df))
    rows.append(
        {
            "table": name,
            "step": "copula fit",
            "seconds": t_cfit,
            "peak MiB": peak_mib(lambda: GaussianCopulaSynthesizer(md).fit(df)),
        }
    )
    for n in (100_000, sample_rows):
        t_s, _ = timed(lambda n=n: model.sample(n))
        rows.append(
            {
                "table": name,
                "step": f"copula sample {n:,} rows",
                "seconds": t_s,
                "peak MiB": peak_mib(lambda n=n: model.sample(n)),
            }
        )
    return rows, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sample", type=int, default=1_000_000)
    args = parser.parse_args()

    rhc = load_rhc()
    md = Metadata.detect_from_dataframe(rhc)
    train, holdout = split(rhc)
    rows, model = bench_table(f"RHC 70% ({len(train)} rows)", train, md, args.sample)
    synthetic = model.sample(len(train))
    quality = sdmetrics_quality(train, synthetic, md)

    big = rhc.sample(args.rows, replace=True, random_state=1).reset_index(drop=True)
    big["pid"] = np.arange(len(big))
    big_rows, _ = bench_table(f"RHC resampled ({len(big):,} rows)", big, md, args.sample)

    print(markdown(rows + big_rows))
    print()
    print(f"Gaussian copula quality on RHC (SDMetrics QualityReport, 70% split): {quality:.3f}")
    print(
        "SDV 2.0 GaussianCopula on the same split (issue 2): fit 5.3 s, 100k rows 9.6 s, "
        "quality 0.900"
    )


if __name__ == "__main__":
    main()
