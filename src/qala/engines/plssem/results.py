"""Results of a PLS-SEM fit: the estimates and the follow-up analyses run on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qala.engines.plssem.estimates import PLSEstimates

if TYPE_CHECKING:
    import numpy as np

    from qala.engines.plssem.bootstrap import BootstrapResults
    from qala.engines.plssem.cvpat import CVPATResults
    from qala.engines.plssem.ipma import IPMAResults
    from qala.engines.plssem.modelfit import ModelFitResults
    from qala.engines.plssem.predict import PredictResults


class PLSResults(PLSEstimates):
    """Estimates of a fitted :class:`~qala.engines.plssem.model.PLSSEM` model (see
    :class:`PLSEstimates`) with bootstrapping, PLSpredict and IPMA as methods.

    The analyses' modules are imported when first used, so a plain fit does not load them.
    """

    # -- follow-up analyses ---------------------------------------------------------------------
    def bootstrap(
        self,
        n_boot: int = 5000,
        *,
        seed: int | None = None,
        alpha: float = 0.05,
        n_jobs: int = 1,
        batch_size: int = 1000,
        bca: bool = True,
        progress: Any = None,
    ) -> BootstrapResults:
        """Bootstrap this model; see :func:`qala.engines.plssem.bootstrap.bootstrap`."""
        from qala.engines.plssem.bootstrap import bootstrap

        return bootstrap(
            self,
            n_boot,
            seed=seed,
            alpha=alpha,
            n_jobs=n_jobs,
            batch_size=batch_size,
            bca=bca,
            progress=progress,
        )

    def predict(self, *, folds: int = 10, repeats: int = 1, seed: int | None = 0) -> PredictResults:
        """PLSpredict; see :func:`qala.engines.plssem.predict.pls_predict`."""
        from qala.engines.plssem.predict import pls_predict

        return pls_predict(self, folds=folds, repeats=repeats, seed=seed)

    def model_fit(
        self, *, n_boot: int = 0, seed: int | None = None, indices: np.ndarray | None = None
    ) -> ModelFitResults:
        """SRMR, d_ULS, d_G and the exact-fit test; see
        :func:`qala.engines.plssem.modelfit.model_fit`."""
        from qala.engines.plssem.modelfit import model_fit

        return model_fit(self, n_boot=n_boot, seed=seed, indices=indices)

    def cvpat(self, *, folds: int = 10, repeats: int = 10, seed: int | None = 0) -> CVPATResults:
        """CVPAT against the indicator average and the linear model; see
        :func:`qala.engines.plssem.cvpat.cvpat`."""
        from qala.engines.plssem.cvpat import cvpat

        return cvpat(self, folds=folds, repeats=repeats, seed=seed)

    def ipma(
        self,
        target: str,
        *,
        scale: tuple[float, float] | dict[str, tuple[float, float]] | None = None,
    ) -> IPMAResults:
        """Importance–performance map; see :func:`qala.engines.plssem.ipma.ipma`."""
        from qala.engines.plssem.ipma import ipma

        return ipma(self, target, scale=scale)

    def __repr__(self) -> str:
        return (
            f"<PLSResults n={self.n_obs} constructs={len(self.constructs)} "
            f"scheme={self.scheme!r} consistent={self.consistent}>"
        )
