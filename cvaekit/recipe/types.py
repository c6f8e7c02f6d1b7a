"""Parameter types a recipe checks, for the engine's keys and components' parameters alike.

No torch here: a plugin's factory can annotate with these and stay cheap to import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

# A parameter annotated with ExistingPath must name a file or folder that exists.
ExistingPath = Annotated[str, "existing path"]


@dataclass(frozen=True)
class Bound:
    """A bound on a number key, checked with the recipe (and shown by `describe`)."""

    bound: float

    def allows(self, value: float) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class AtLeast(Bound):
    """A lower bound: `Annotated[int, AtLeast(1)]`."""

    def allows(self, value: float) -> bool:
        return value >= self.bound

    def __str__(self) -> str:
        return f"at least {self.bound:g}"


@dataclass(frozen=True)
class Above(AtLeast):
    """A strict lower bound: `Annotated[float, Above(0)]`."""

    def allows(self, value: float) -> bool:
        return value > self.bound

    def __str__(self) -> str:
        return f"above {self.bound:g}"


@dataclass(frozen=True)
class Below(Bound):
    """A strict upper bound: `Annotated[float, Above(0), Below(1)]`."""

    def allows(self, value: float) -> bool:
        return value < self.bound

    def __str__(self) -> str:
        return f"below {self.bound:g}"


# The usual ranges, for the engine's keys and for components' parameters alike.
PositiveInt = Annotated[int, AtLeast(1)]
PositiveFloat = Annotated[float, Above(0)]
NonNegativeFloat = Annotated[float, AtLeast(0)]
NonNegativeInt = Annotated[int, AtLeast(0)]

