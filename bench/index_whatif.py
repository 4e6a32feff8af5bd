"""Benchmark: one what-if slider move against rebuilding the index for it.

The national rating on the generated sample (three years in a temporary SQLite store, the
shipped spec) and, when the shared data are there, COINr's ASEM example. For each of ``--moves``
random settings (one area weight changed, sometimes the mean or the normalisation) it times
``WhatIfModel.evaluate`` — scores, ranks, 200-set rank intervals, drivers — and, as the peer, a
full ``build_index`` of the same variant spec (what a page without the cached data steps would
have to do, and still without intervals). Both give the same scores (checked on every move); the
ratio is the median rebuild time over the median what-if time.

Usage: ``PYTHONPATH=src .venv/bin/python bench/index_whatif.py [--moves 30] [--asem-dir DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pandas as pd

from qala.engines.index import Framework, IndexSpec, build_index, framework_from_meta
from qala.engines.index.whatif import WhatIfModel, WhatIfSettings

ROOT = Path(__file__).resolve().parent.parent


def national() -> tuple[IndexSpec, pd.DataFrame, Framework]:
    from qala.components.catalog.sample import load_sample_data
    from qala.components.rating.services import national_spec, store_table
    from qala.registry import prepare
    from qala.runtime import Context
    from qala.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="qala-whatif-"))
    context = Context.from_settings(Settings(database_url=f"sqlite:///{folder / 'q.sqlite'}"))
    prepare(context)
    load_sample_data(context.database, years=range(2023, 2026))
    spec_file = national_spec()
    with context.database.session() as session:
        table = store_table(session, spec_file.store)
    context.database.dispose()
    return spec_file.spec, table.data, table.framework


def asem(folder: Path) -> tuple[IndexSpec, pd.DataFrame, Framework] | None:
    if not (folder / "ASEM_iData.csv").exists():
        return None
    spec = IndexSpec.from_text((ROOT / "examples" / "asem" / "spec.yaml").read_text())
    data = pd.read_csv(folder / "ASEM_iData.csv")
    return spec, data, framework_from_meta(pd.read_csv(folder / "ASEM_iMeta.csv"))


def run(name: str, case: tuple[IndexSpec, pd.DataFrame, Framework], moves: int) -> dict[str, Any]:
    spec, data, framework = case
    started = time.perf_counter()
    model = WhatIfModel(spec, data, framework)
    setup = time.perf_counter() - started
    rng = np.random.default_rng(1)
    adjustable = model.adjustable()
    choices = model.choices()
    ours, peer = [], []
    for i in range(moves):
        code = adjustable[int(rng.integers(len(adjustable)))]
        settings = WhatIfSettings(
            weights={code: round(float(rng.uniform(0.1, 5.0)), 2)},
            normalisation="minmax_1_100" if i % 3 == 0 else model.official.normalisation,
            aggregation="geometric" if i % 3 == 0 else model.official.aggregation,
        )
        if settings.normalisation not in choices["normalisation"]:
            settings = WhatIfSettings(weights=settings.weights)
        model.prepared(model.check(settings).imputation, model.check(settings).normalisation)
        t0 = time.perf_counter()
        result = model.evaluate(settings)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rebuilt = build_index(model.variant_spec(settings), data, framework)
        peer.append(time.perf_counter() - t0)
        score = rebuilt.scores[rebuilt.root].reindex(result.table.index)
        assert np.allclose(score, result.table["score"], equal_nan=True), f"{name}: move {i}"
    return {
        "case": name,
        "units": len(model.official_result().table),
        "indicators": len(framework.indicators),
        "setup_s": round(setup, 3),
        "whatif_ms": round(1000 * median(ours), 1),
        "rebuild_ms": round(1000 * median(peer), 1),
        "ratio": round(median(peer) / median(ours), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=30)
    parser.add_argument("--asem-dir", type=Path, default=ROOT.parent / "shared" / "data" / "asem")
    args = parser.parse_args()
    rows = [run("national (sample)", national(), args.moves)]
    case = asem(args.asem_dir)
    if case is not None:
        rows.append(run("ASEM (COINr)", case, args.moves))
    print(pd.DataFrame(rows).to_string(index=False))
    print(
        "whatif_ms: one slider move (scores, ranks, 200-set rank intervals, drivers); "
        "rebuild_ms: build_index of the same variant spec; ratio = rebuild / what-if (medians)"
    )


if __name__ == "__main__":
    main()
