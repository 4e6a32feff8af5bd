"""PLS-SEM engine: partial least squares structural equation modelling (PLS path modelling).

``PLSSEM(spec, scheme=..., consistent=...).fit(data)`` returns :class:`PLSResults` with loadings,
weights, paths, R², reliability, validity and structural measures; follow-ups are bootstrapping,
PLSpredict, importance–performance maps and multigroup analysis with MICOM.
"""

from qala.engines.plssem.estimation import build_plan, prepare_data
from qala.engines.plssem.model import PLSSEM
from qala.engines.plssem.results import PLSResults
from qala.engines.plssem.spec import Construct, ModelSpec, Path, build_model, parse_model

__all__ = [
    "PLSSEM",
    "Construct",
    "ModelSpec",
    "PLSResults",
    "Path",
    "build_model",
    "build_plan",
    "parse_model",
    "prepare_data",
]
