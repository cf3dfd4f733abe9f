"""What a write must satisfy before anything is sent: pure checks over the tag's write
settings (plant.toml), the caller's role and the current live values.

Static checks need only the request and the catalog (writable, role, a finite number inside
the write range); live checks need the current readings (the change one write may make,
``max_step``, from the tag's current value; a ``permissive`` tag reading the value it must).
A live value is trusted only when its quality is good and it is fresh: a write must never be
judged against a value the gateway no longer knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from drivers.quality import Quality
from gateway.services.accounts.users import Role
from gateway.services.writes.records import Refusal


class PermissiveRule(Protocol):
    tag: str
    value: float


class WritableTag(Protocol):
    """The write settings of a catalog tag (``plant.schema.Tag``)."""

    id: str
    engineering_units: str
    writable: bool
    max_step: float | None
    write_role: str
    permissive: PermissiveRule | None

    def write_range(self) -> tuple[float, float]: ...

    def read_back_tolerance(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """A tag's current value as the live cache holds it."""

    value: float
    quality: int
    age_s: float

    def trusted(self, max_age_s: float) -> bool:
        return (self.quality >= Quality.GOOD and math.isfinite(self.value)
                and self.age_s <= max_age_s)


@dataclass(frozen=True, slots=True)
class Rejection:
    refusal: Refusal
    detail: str


def required_role(tag: WritableTag) -> Role:
    return Role.parse(tag.write_role)


def check_static(tag: WritableTag, value: float, role: Role | None) -> Rejection | None:
    """Writable, allowed to this caller, a finite number inside the write range."""
    if not tag.writable:
        return Rejection(Refusal.NOT_WRITABLE, f"tag {tag.id} is not writable")
    needed = required_role(tag)
    if role is None:
        return Rejection(Refusal.ROLE, f"writing {tag.id} needs an authenticated user with the "
                                       f"{needed.label} role or higher")
    if role < needed:
        return Rejection(Refusal.ROLE, f"writing {tag.id} needs the {needed.label} role or "
                                       f"higher (you are {role.label})")
    if not math.isfinite(value):
        return Rejection(Refusal.NOT_FINITE, f"{value} is not a finite number")
    lo, hi = tag.write_range()
    if not lo <= value <= hi:
        return Rejection(Refusal.OUT_OF_RANGE, f"{value:g} {tag.engineering_units} is outside "
                                               f"the write range {lo:g}..{hi:g} of {tag.id}")
    return None


def check_live(tag: WritableTag, value: float, current: Reading | None,
               permissive: Reading | None, max_age_s: float) -> Rejection | None:
    """The step from the current value, and the permissive. ``current`` is the tag's reading
    (or the last confirmed write when newer); ``permissive`` the permissive tag's reading."""
    if tag.max_step is not None:
        if current is None or not current.trusted(max_age_s):
            return Rejection(Refusal.NO_CURRENT_VALUE,
                             f"{tag.id} has no good current value (within {max_age_s:g} s) to "
                             f"check the step of at most {tag.max_step:g} "
                             f"{tag.engineering_units} against")
        step = abs(value - current.value)
        if step > tag.max_step:
            return Rejection(Refusal.STEP, f"{current.value:g} -> {value:g} "
                                           f"{tag.engineering_units} is a step of {step:g}, more "
                                           f"than the {tag.max_step:g} one write of {tag.id} may "
                                           f"make")
    rule = tag.permissive
    if rule is not None:
        if permissive is None or not permissive.trusted(max_age_s):
            return Rejection(Refusal.PERMISSIVE, f"permissive {rule.tag} of {tag.id} has no good "
                                                 f"current value (within {max_age_s:g} s)")
        if abs(permissive.value - rule.value) > 1e-9 * max(1.0, abs(rule.value)):
            return Rejection(Refusal.PERMISSIVE, f"permissive {rule.tag} reads "
                                                 f"{permissive.value:g}, {tag.id} may be written "
                                                 f"only while it reads {rule.value:g}")
    return None


def agrees(tag: WritableTag, written: float, read_back: float, quality: int) -> bool:
    """The read-back confirms the write: good, and within the tag's read-back tolerance."""
    return (quality >= Quality.GOOD and math.isfinite(read_back)
            and abs(read_back - written) <= tag.read_back_tolerance())
