"""The national rating's what-if: weights, normalisation, aggregation and imputation changed on
the stored values, compared with the official method, and kept as a spec when worth keeping.

The settings travel as a short query string (``w=code:weight,…&norm=…&agg=…&imp=…``) so that a
link reproduces a view; only the weights that differ from the framework's are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place
from qala.components.rating.models import RatingSpec
from qala.components.rating.services import SpecFile, national_spec, save_spec, store_table
from qala.core.errors import ValidationError
from qala.engines.index.whatif import SPEC_CHOICE, WhatIfModel, WhatIfResult, WhatIfSettings
from qala.store.database import Database

Names = dict[str, str]


@dataclass
class RatingWhatIf:
    """A what-if model over the stored values of one year, with the names pages show."""

    spec_file: SpecFile
    year: int
    model: WhatIfModel
    place_names: dict[str, Names]
    node_names: dict[str, Names]
    illustrative: bool

    def evaluate(self, settings: WhatIfSettings) -> WhatIfResult:
        return self.model.evaluate(settings)

    def groups(self) -> list[tuple[str, list[str]]]:
        """Adjustable weights by parent: the root's areas first, then each area's groups."""
        fw = self.model.framework
        out: list[tuple[str, list[str]]] = []
        for parent in [fw.root, *(a for a in fw.aggregates[::-1] if a != fw.root)]:
            kids = [k for k in fw.children(parent) if k in fw.aggregates]
            if kids:
                out.append((parent, kids))
        return out


def rating_whatif(
    database: Database, spec_file: SpecFile | None = None, *, year: int | None = None
) -> RatingWhatIf:
    """The what-if model of ``spec_file`` (default: the national rating) on the stored values."""
    spec_file = spec_file or national_spec()
    with database.session() as session:
        table = store_table(session, spec_file.store, year=year)
        places = {
            p.code: {"kk": p.name_kk, "ru": p.name_ru, "en": p.name_en}
            for p in session.scalars(select(Place))
        }
    block = spec_file.uncertainty or {}
    noise = next(
        (a["weights_noise"] for a in block.get("assumptions") or [] if a.get("weights_noise")),
        None,
    )
    model = WhatIfModel(
        spec_file.spec,
        table.data,
        table.framework,
        noise={int(k): float(v) for k, v in noise.items()} if noise else None,
        seed=int(block.get("seed", 0) or 0),
    )
    return RatingWhatIf(
        spec_file=spec_file,
        year=table.year,
        model=model,
        place_names=places,
        node_names=node_names(spec_file.store.framework),
        illustrative=table.illustrative_share > 0,
    )


def node_names(framework_id: str) -> dict[str, Names]:
    catalogue = load_catalogue()
    out: dict[str, Names] = {}
    stack = [catalogue.framework(framework_id).root]
    while stack:
        node = stack.pop()
        langs = ("kk", "ru", "en")
        if node.indicator is not None:
            ind = catalogue.indicators[node.indicator]
            out[ind.id] = {lang: ind.name(lang) for lang in langs}
        else:
            out[node.code] = {lang: node.name(lang) for lang in langs}
        stack.extend(node.children)
    return out


# ---------------------------------------------------------------------------------------------
# Settings in links


def parse_settings(query: Mapping[str, str]) -> WhatIfSettings:
    """Settings from a link's query (``w``, ``norm``, ``agg``, ``imp``); the model checks the
    values, this only reads them (a weight that is not a number is named)."""
    weights: dict[str, float] = {}
    text = (query.get("w") or "").strip()
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, sep, value = item.rpartition(":")
        if not sep or not code:
            raise ValidationError.single(
                "each weight is written `code:number`", column="w", value=item
            )
        try:
            weights[code] = float(value)
        except ValueError:
            raise ValidationError.single(
                f"weight of `{code}` is not a number", column="w", value=value
            ) from None
    return WhatIfSettings(
        weights=weights,
        normalisation=query.get("norm") or SPEC_CHOICE,
        aggregation=query.get("agg") or SPEC_CHOICE,
        imputation=query.get("imp") or SPEC_CHOICE,
    )


def settings_query(settings: WhatIfSettings) -> dict[str, str]:
    """The query that :func:`parse_settings` reads back into ``settings``."""
    out = {"norm": settings.normalisation, "agg": settings.aggregation, "imp": settings.imputation}
    if settings.weights:
        out["w"] = ",".join(f"{c}:{w:g}" for c, w in sorted(settings.weights.items()))
    return out


def preset_settings(
    whatif: RatingWhatIf, presets: Mapping[str, Mapping[str, float]], name: str
) -> WhatIfSettings:
    """The official settings with the area weights of stakeholder group ``name``."""
    if name not in presets:
        raise ValidationError.single(
            f"unknown preset `{name}`; expected one of {', '.join(presets) or 'none'}",
            column="preset",
            value=name,
        )
    official = whatif.model.official
    fw = whatif.model.framework
    # presets are percentages; put them on the framework's scale so sliders keep one range
    total = sum(fw[a].weight for a in fw.children(fw.root))
    return WhatIfSettings(
        weights={code: round(pct / 100.0 * total, 3) for code, pct in presets[name].items()},
        normalisation=official.normalisation,
        aggregation=official.aggregation,
        imputation=official.imputation,
    )


# ---------------------------------------------------------------------------------------------
# Variants


def variant_text(whatif: RatingWhatIf, settings: WhatIfSettings, *, name: str) -> str:
    """A spec file (store, index, uncertainty blocks) that builds the rating under ``settings``."""
    spec = whatif.model.variant_spec(settings)
    spec_dict: dict[str, Any] = spec.to_dict()
    spec_dict["name"] = name
    spec_dict["description"] = f"What-if variant of {whatif.spec_file.name}: " + ", ".join(
        f"{k}={v}" for k, v in settings_query(whatif.model.check(settings)).items()
    )
    store = whatif.spec_file.store
    document: dict[str, Any] = {
        "store": {
            "framework": store.framework,
            "level": store.level,
            "min_coverage": store.min_coverage,
        },
        "index": spec_dict,
    }
    if whatif.spec_file.uncertainty:
        document["uncertainty"] = whatif.spec_file.uncertainty
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def save_variant(
    session: Session, whatif: RatingWhatIf, settings: WhatIfSettings, *, name: str
) -> RatingSpec:
    """Store the settings as a named spec (``qala rating build --spec NAME`` builds it)."""
    name = name.strip()
    if not name or len(name) > 80 or not all(ch.isalnum() or ch in "_-." for ch in name):
        raise ValidationError.single(
            "a variant name is 1–80 letters, digits, `_`, `-` or `.`", column="name", value=name
        )
    if name == whatif.spec_file.name:
        raise ValidationError.single(
            "a variant cannot replace the official spec; choose another name",
            column="name",
            value=name,
        )
    return save_spec(session, variant_text(whatif, settings, name=name), name=name)
