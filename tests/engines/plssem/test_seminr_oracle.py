"""Live comparison with the PyPI package seminr (GPL-3); skipped when it is not installed, failed under CI."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from tests.conftest import require_module, shared_file
from tests.engines.plssem.seminr_oracle import MOBI_TEXT, SCHEMES, seminr_fit, seminr_model

from qala.engines.plssem import PLSSEM
from qala.engines.plssem.bootstrap import bootstrap, resample_indices

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module", autouse=True)
def seminr() -> ModuleType:
    return require_module("seminr", "the `peers` extra (seminr, GPL test oracle) is not installed")


@pytest.fixture(scope="module")
def mobi() -> pd.DataFrame:
    return pd.read_csv(shared_file("mobi.csv"))


@pytest.mark.parametrize("consistent", [False, True])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_estimates_agree_to_machine_precision(
    mobi: pd.DataFrame, scheme: str, consistent: bool
) -> None:
    ref = seminr_fit(mobi, scheme, consistent)
    ours = PLSSEM(MOBI_TEXT, scheme=scheme, consistent=consistent).fit(mobi)
    for key, value in ref["paths"].items():
        assert ours.paths[key] == pytest.approx(value, abs=1e-10)
    for key, value in ref["loadings"].items():
        construct, item = key.split("|")
        assert ours.loadings.loc[item, construct] == pytest.approx(value, abs=1e-10)
    for key, value in ref["reliability"].items():
        construct, measure = key.split("|")
        assert ours.reliability.loc[construct, measure] == pytest.approx(value, abs=1e-10)


def test_bootstrap_matches_on_the_same_resamples(mobi: pd.DataFrame) -> None:
    s, model = seminr_model(mobi, "path", False)
    idx = resample_indices(len(mobi), 40, seed=7)
    theirs = s.bootstrap_model(model, 40, indices=idx)
    ours = bootstrap(PLSSEM(MOBI_TEXT).fit(mobi), indices=idx, bca=False)
    d = theirs.paths_descriptives
    for label, row in ours.paths.iterrows():
        source, target = label.split(" -> ")
        assert row["mean"] == pytest.approx(d.get(source, f"{target} Boot Mean"), abs=1e-10)
        assert row["sd"] == pytest.approx(d.get(source, f"{target} Boot SD"), abs=1e-10)


def test_higher_order_construct_matches(seminr: ModuleType, mobi: pd.DataFrame) -> None:
    s = seminr
    mm = s.constructs(
        s.composite("Image", s.multi_items("IMAG", range(1, 6))),
        s.composite("Expectation", s.multi_items("CUEX", range(1, 4))),
        s.composite("Quality", s.multi_items("PERQ", range(1, 8))),
        s.composite("Value", s.multi_items("PERV", range(1, 3))),
        s.higher_composite("Satisfaction", ["Image", "Value"]),
        s.composite("Loyalty", s.multi_items("CUSL", range(1, 4))),
    )
    sm = s.relationships(
        s.paths(from_=["Expectation", "Quality"], to=["Satisfaction"]),
        s.paths(from_="Satisfaction", to=["Loyalty"]),
    )
    theirs = s.estimate_pls(mobi, mm, sm)
    ours = PLSSEM(
        "Image =~ IMAG1 + IMAG2 + IMAG3 + IMAG4 + IMAG5\nExpectation =~ CUEX1 + CUEX2 + CUEX3\n"
        "Quality =~ PERQ1 + PERQ2 + PERQ3 + PERQ4 + PERQ5 + PERQ6 + PERQ7\n"
        "Value =~ PERV1 + PERV2\nSatisfaction =~ Image + Value\nLoyalty =~ CUSL1 + CUSL2 + CUSL3\n"
        "Satisfaction ~ Expectation + Quality\nLoyalty ~ Satisfaction\n"
    ).fit(mobi)
    names = list(theirs.path_coef.rows)
    paths = pd.DataFrame(theirs.path_coef.values, index=names, columns=names)
    for label, value in ours.paths.items():
        source, target = label.split(" -> ")
        assert value == pytest.approx(paths.loc[source, target], abs=1e-10)
    loads = pd.DataFrame(
        theirs.outer_loadings.values,
        index=theirs.outer_loadings.rows,
        columns=theirs.outer_loadings.cols,
    )
    for item in ("IMAG1", "PERV2", "Image", "Value"):
        construct = loads.columns[np.flatnonzero(loads.loc[item].to_numpy())[0]]
        assert ours.loadings.loc[item, construct] == pytest.approx(loads.loc[item, construct])


@pytest.mark.slow
def test_plspredict_leave_one_out_matches(mobi: pd.DataFrame) -> None:
    s, model = seminr_model(mobi, "path", False)
    theirs = s.predict_pls(model, technique=s.predict_EA, no_folds=None)
    items = theirs.items
    actual = pd.DataFrame(items.item_actuals.values, columns=items.item_actuals.cols)
    pls = pd.DataFrame(items.pls_out_of_sample.values, columns=items.pls_out_of_sample.cols)
    lm = pd.DataFrame(items.lm_out_of_sample.values, columns=items.lm_out_of_sample.cols)
    ours = PLSSEM(MOBI_TEXT).fit(mobi).predict(folds=len(mobi)).table
    for item in ours.index:
        rmse = np.sqrt(((actual[item] - pls[item]) ** 2).mean())
        lm_rmse = np.sqrt(((actual[item] - lm[item]) ** 2).mean())
        assert ours.loc[item, "pls_rmse"] == pytest.approx(rmse, abs=1e-9)
        assert ours.loc[item, "lm_rmse"] == pytest.approx(lm_rmse, abs=1e-9)
