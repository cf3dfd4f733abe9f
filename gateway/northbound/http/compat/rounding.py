"""How the seed routes round their figures: as the original backend did.

The report's screens print a figure as the API answers it, so the seed routes answer what the
original backend answered: its Annex B examples and its code (Chapter 3) fix the decimals per
kind of figure. The gateway's own routes (``/api/analytics/...``) keep full precision.

======================  ========  ==============================================================
kind                    decimals  Anexo B example / report code
======================  ========  ==============================================================
:data:`Percent`         1         §3.1 ``efficiency`` 92.5, ``quality`` 99.8; §3.3 OEE 87.5,
                                  99.2, 96.8, 89.3, stability ``index`` 88.7; §7.1
                                  ``failure_probability`` 3.2, ``confidence`` 99.5; §7.2
                                  ``efficiency_score`` 94.5
:data:`Barrels`         0         §3.1 ``throughput`` 12500; §3.2 ``production`` 12350 (bbl/day)
:data:`Usd`             0         §3.3 ``daily_loss_usd`` 4350
:data:`Kwh`             0         §7.2 ``consumption_kwh`` 4850, ``savings_potential`` 150
:data:`KwhPerBbl`       2         §3.6.2 ``round(avg_consumption, 2)`` (kWh/bbl)
:data:`ProcessValue`    2         §3.5.2 ``"val": round(val, 2)``; §5.1 sensor ``value`` 352.4
:data:`Litres`          0         §4.1 ``capacity`` 80000, ``current_level`` 48000
:data:`Hours`           1         remaining useful life (§7.1 shows none; as the PdM service)
:data:`Variance`        4         §3.3 shows ``variance`` 0.5 of the report's random figure;
                                  the gateway's is a share of the span squared, about 10⁻³ on a
                                  steady plant, which 1–2 decimals would print as 0.0
======================  ========  ==============================================================

Each kind is a pydantic type (``Percent | None`` where a figure may be missing): the models
of the seed routes round on construction and say so in the OpenAPI document. Rounding is Python's ``round`` (half to even, as the report's
backend), and never gives ``-0.0``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

# The route description of every seed route with rounded figures (the gateway's own
# /api/analytics/... routes answer the same figures unrounded).
ROUNDED = ("Figures are rounded as the original backend's (each field says to how many "
           "decimals); /api/analytics/... has them in full precision.")


def round_to(digits: int):
    """A validator rounding a number to ``digits`` decimals."""
    def rounded(value: float) -> float:
        return round(value, digits) + 0.0  # + 0.0: -0.0 becomes 0.0
    return rounded


def _says(digits: int, what: str) -> str:
    plural = "" if digits == 1 else "s"
    return f"{what}, rounded to {digits} decimal{plural} (as the original backend)"


Percent = Annotated[float, AfterValidator(round_to(1)), Field(description=_says(1, "percentage or 0–100 score"))]
Barrels = Annotated[float, AfterValidator(round_to(0)), Field(description=_says(0, "barrels per day"))]
Usd = Annotated[float, AfterValidator(round_to(0)), Field(description=_says(0, "US dollars"))]
Kwh = Annotated[float, AfterValidator(round_to(0)), Field(description=_says(0, "kWh"))]
KwhPerBbl = Annotated[float, AfterValidator(round_to(2)), Field(description=_says(2, "kWh per barrel"))]
ProcessValue = Annotated[float, AfterValidator(round_to(2)),
                         Field(description=_says(2, "value in the tag's engineering units"))]
Litres = Annotated[float, AfterValidator(round_to(0)), Field(description=_says(0, "litres"))]
Hours = Annotated[float, AfterValidator(round_to(1)), Field(description=_says(1, "hours"))]
Variance = Annotated[float, AfterValidator(round_to(4)),
                     Field(description=_says(4, "mean squared std/span ratio"))]
