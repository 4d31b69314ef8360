"""What the Suzhou demo builds: counts per level and the real town names and centres it starts from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Town:
    """A town (镇) or street (街道) with an approximate real centre (lon, lat)."""

    name: str
    lon: float
    lat: float

    @property
    def is_street(self) -> bool:
        """Tell whether this is a street (街道, urban) rather than a town (镇)."""
        return self.name.endswith("街道")


@dataclass(frozen=True)
class DistrictPlan:
    """How deep to build one district: towns always; communities and base grids when given."""

    code: str
    towns: tuple[Town, ...] = ()
    town_count: int = 0
    communities: int = 0
    grids: int = 0
    enterprise_grids: int = 0
    industrial_centres: tuple[tuple[float, float], ...] = ()


WUZHONG = DistrictPlan(
    code="320506",
    towns=(
        Town("长桥街道", 120.605, 31.268), Town("越溪街道", 120.585, 31.225), Town("郭巷街道", 120.672, 31.262),
        Town("横泾街道", 120.560, 31.160), Town("香山街道", 120.450, 31.230), Town("城南街道", 120.630, 31.240),
        Town("太湖街道", 120.520, 31.190), Town("甪直镇", 120.860, 31.260), Town("木渎镇", 120.510, 31.265),
        Town("胥口镇", 120.470, 31.200), Town("东山镇", 120.400, 31.075), Town("光福镇", 120.430, 31.290),
        Town("金庭镇", 120.290, 31.135), Town("临湖镇", 120.490, 31.110),
    ),
    communities=205,
    grids=942,
)

WUJIANG = DistrictPlan(
    code="320509",
    towns=(
        Town("松陵街道", 120.640, 31.160), Town("江陵街道", 120.665, 31.125), Town("横扇街道", 120.560, 31.060),
        Town("八坼街道", 120.630, 31.095), Town("同里镇", 120.720, 31.160), Town("平望镇", 120.640, 30.975),
        Town("盛泽镇", 120.650, 30.920), Town("七都镇", 120.420, 30.960), Town("震泽镇", 120.500, 30.920),
        Town("桃源镇", 120.550, 30.840), Town("黎里镇", 120.760, 30.930),
    ),
    communities=306,
    grids=899,
    enterprise_grids=160,
    industrial_centres=((120.655, 30.915), (120.670, 31.125), (120.770, 30.935), (120.640, 30.975)),
)

# Other districts stop at level 2 (towns), with roughly their real number of towns and streets.
OTHERS = (
    DistrictPlan(code="320505", town_count=8), DistrictPlan(code="320507", town_count=10),
    DistrictPlan(code="320508", town_count=8), DistrictPlan(code="320581", town_count=14),
    DistrictPlan(code="320582", town_count=10), DistrictPlan(code="320583", town_count=11),
    DistrictPlan(code="320585", town_count=7),
)

# A few special grids in Wuzhong, so that its cases also land in special grids: (kind, name, lon, lat, km).
WUZHONG_SPECIALS = (
    ("scenic", "东山景区", 120.405, 31.065, 2.4), ("scenic", "穹窿山景区", 120.445, 31.265, 1.8),
    ("scenic", "光福香雪海景区", 120.405, 31.300, 1.5), ("park", "吴中经济技术开发区", 120.640, 31.250, 2.2),
    ("park", "甪直工业园", 120.880, 31.270, 1.6), ("commercial", "木渎古镇商圈", 120.515, 31.262, 0.9),
    ("commercial", "长桥商业街区", 120.606, 31.272, 0.7),
)



@dataclass(frozen=True)
class Scale:
    """Sizes of one demo build. ``small`` shrinks every count so that tests build it in seconds."""

    small: bool = False
    components: int = 680_000
    cases_per_day: int = 1600
    days: int = 365

    def communities(self, plan: DistrictPlan) -> int:
        """Return how many communities to build in ``plan``'s district."""
        return 2 * len(plan.towns) if self.small else plan.communities

    def grids(self, plan: DistrictPlan) -> int:
        """Return how many base grids to build in ``plan``'s district."""
        return 2 * self.communities(plan) if self.small else plan.grids

    def enterprise_grids(self, plan: DistrictPlan) -> int:
        """Return how many enterprise special grids to overlay on ``plan``'s district."""
        return min(plan.enterprise_grids, 6) if self.small else plan.enterprise_grids


FULL = Scale()
SMALL = Scale(small=True, components=4000, cases_per_day=40, days=20)
