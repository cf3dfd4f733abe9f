"""Named scenarios: scripted upsets that make the simulated plant raise alarms on purpose.

Normal simulated operation (rightly) raises no alarm, so a new user would meet empty alarm
panels. A scenario is a short script of timed steps on the plant model, built on the model's
own machinery: process excursions (:meth:`simulator.model.PlantModel.excursion`), equipment
wear (:mod:`simulator.degradation`), tank overfills (:mod:`simulator.tanks`) and device silence
(:mod:`simulator.faults`). Start one with ``python -m simulator --scenario NAME`` (also
``refineryiq simulate --scenario NAME`` and ``refineryiq run --simulate --scenario NAME``) or
``POST /scenarios {"name": "..."}`` on the control API; ``GET /scenarios`` lists them.

Times are simulated seconds from the start of the scenario (so ``--speed`` shortens them), and
a scenario started with the simulator (``--scenario``) gives the same series for the same seed.
The limits they cross are those of the shipped ``config/plant.toml``:

- ``furnace-upset``: FURNACE-100's firing runs away. The CDU furnace outlet TI-101 (normal
  340..360 °C, HH 380) climbs past H after about 30 s and past HH after about 90 s, peaking near
  405 °C; the tube skin TI-109 passes H (540 °C). The firing recovers after 10 minutes.
- ``pump-bearing-wear``: PUMP-101's bearing wears out in about an hour (wear accelerates, so
  most of it shows in the last quarter): vibration VI-101 passes H (4.5 mm/s) after 40 to 55
  minutes and HH (7.1) some minutes later, bearing temperature TI-107 passes H (75 °C), and the
  pump fails (XS-101 drops to 0) after about an hour. With ``--speed 60`` a simulated hour
  takes a minute.
- ``tank-overfill``: the gasoline rundown into TK-102 is not switched: its level LI-1102 rises
  from where it is to 100 % in 6 minutes, past H (90 %) and HH (95 %), stays full for 10
  minutes, then the transfer out resumes.
- ``device-dropout``: the Modbus PLC (the CDU-101 and FCC-201 tags) stops answering for 2
  minutes, then answers again on the same connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.faults import Device
from simulator.model import PlantModel


@dataclass(frozen=True)
class Upset:
    """Bias one tag's process target by ``delta`` (ramp in, hold, ramp out)."""

    tag_id: str
    delta: float
    rise_s: float
    hold_s: float
    fall_s: float

    def check(self, model: PlantModel) -> None:
        if self.tag_id not in model.catalog.index:
            raise ValueError(f"needs tag '{self.tag_id}', which the plant does not have")

    def apply(self, model: PlantModel) -> None:
        model.excursion(self.tag_id, self.delta, self.rise_s, self.hold_s, self.fall_s)


@dataclass(frozen=True)
class Wear:
    """Start an equipment's wear now, to fail in about ``wear_h`` hours."""

    equipment_id: str
    wear_h: float

    def check(self, model: PlantModel) -> None:
        if self.equipment_id not in model.equipment_ids:
            raise ValueError(f"needs equipment '{self.equipment_id}', which the plant does not have")

    def apply(self, model: PlantModel) -> None:
        model.start_wear(self.equipment_id, self.wear_h)


@dataclass(frozen=True)
class Overfill:
    """Fill a tank from its level to 100 % in ``to_full_s``, keep it full ``hold_s``."""

    tank_id: str
    to_full_s: float
    hold_s: float

    def check(self, model: PlantModel) -> None:
        if self.tank_id not in model.tanks.tank_ids:
            raise ValueError(f"needs tank '{self.tank_id}', which the plant does not have")

    def apply(self, model: PlantModel) -> None:
        model.tanks.overfill(self.tank_id, self.to_full_s, self.hold_s)


@dataclass(frozen=True)
class Silence:
    """A protocol front-end stops answering for ``duration_s``."""

    device: Device
    duration_s: float

    def check(self, model: PlantModel) -> None:
        return None

    def apply(self, model: PlantModel) -> None:
        model.silence(self.device, self.duration_s)


Action = Upset | Wear | Overfill | Silence


@dataclass(frozen=True)
class Step:
    at_s: float  # simulated seconds after the scenario starts
    action: Action


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str  # one line, for GET /scenarios and --help
    steps: tuple[Step, ...]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("furnace-upset",
             "FURNACE-100 firing upset: TI-101 past H (360 °C) in ~30 s and HH (380 °C) in ~90 s, "
             "tube skin TI-109 past H; recovers after 10 min",
             (Step(0.0, Upset("TI-101", delta=55.0, rise_s=15.0, hold_s=600.0, fall_s=300.0)),
              Step(0.0, Upset("TI-109", delta=40.0, rise_s=15.0, hold_s=600.0, fall_s=300.0)))),
    Scenario("pump-bearing-wear",
             "PUMP-101 bearing wears out in ~1 h: VI-101 past H (4.5 mm/s) after 40-55 min, then HH, "
             "TI-107 past H (75 °C); the pump fails at ~1 h",
             (Step(0.0, Wear("PUMP-101", wear_h=1.0)),)),
    Scenario("tank-overfill",
             "TK-102 rundown not switched: LI-1102 rises to 100 % in 6 min, past H (90 %) and HH (95 %); "
             "full for 10 min",
             (Step(0.0, Overfill("TK-102", to_full_s=360.0, hold_s=600.0)),)),
    Scenario("device-dropout",
             "the Modbus PLC (CDU-101, FCC-201 tags) stops answering for 2 min, then returns",
             (Step(0.0, Silence(Device.MODBUS, duration_s=120.0)),)),
)}


class UnknownScenario(LookupError):
    """A scenario name that is not in :data:`SCENARIOS` (the message lists the known ones)."""

    def __init__(self, name: str):
        super().__init__(f"unknown scenario '{name}'; one of: {', '.join(SCENARIOS)}")


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; UnknownScenario if there is none."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name) from None


class ScenarioRunner:
    """Scenarios started on one model: their steps, carried out as simulated time reaches them."""

    def __init__(self) -> None:
        self._pending: list[tuple[float, int, Action]] = []
        self._order = 0
        self.started: list[tuple[str, float]] = []  # (name, simulated start time)

    def start(self, name: str, model: PlantModel) -> Scenario:
        """Start scenario ``name`` now; raises UnknownScenario, or ValueError when the plant lacks
        what it acts on. Steps due now are carried out at once."""
        chosen = scenario(name)
        for step in chosen.steps:
            try:
                step.action.check(model)
            except ValueError as exc:
                raise ValueError(f"scenario '{name}' {exc}") from None
        now = model.time_s
        for step in chosen.steps:
            self._pending.append((now + step.at_s, self._order, step.action))
            self._order += 1
        self._pending.sort(key=lambda item: (item[0], item[1]))
        self.started.append((name, now))
        self.advance(model)
        return chosen

    def advance(self, model: PlantModel) -> None:
        """Carry out every step due at the model's current time."""
        while self._pending and self._pending[0][0] <= model.time_s:
            _, _, action = self._pending.pop(0)
            action.apply(model)

    def state(self) -> list[dict]:
        return [{"name": name, "started_s": started} for name, started in self.started]
