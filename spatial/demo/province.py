"""``gridlink demo --scale province``: a synthetic Jiangsu for measuring how gridlink's costs grow with the map.

No real boundaries of Jiangsu's other cities are bundled, so the province is a documented tiling of Jiangsu's
extent (lon 116.36–121.96, lat 30.76–35.13, a rectangle larger than the real province: the sea and the
neighbours are land here):

1. 13 cities, the Voronoi cells of the real city centres (南京 3201 … 宿迁 3213, their real code order),
   clipped to the extent;
2. 8 districts per city (codes ``32CC01`` … ``32CC08``), Voronoi cells of k-means seeds of the city;
3. below each district the Suzhou demo's own builder (``GridBuilder._full_district``): 12 towns at sampled
   centres, 150 communities and ≈1,442 base grids split by urban density — 104 districts, 1,248 towns,
   15,600 communities, 150,000 base grids, codes extending their parents' by three digits as in SPEC.md.

Voronoi cells share their edges exactly, so every level partitions its parent (the topology checks of
``spatial/grids/topology.py`` hold). Components (≈10 million) are placed per district along its roads by the
demo's ``generate_components``; a month of cases (≈300,000 a day) comes from the demo's ``CaseGenerator`` over
the whole province. ``fraction`` scales components and cases (not grids) down, so that a measurement fits
the machine; the city and province build share one code path (``spatial/demo/build.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from spatial.demo.build import Builder
from spatial.demo.components import ComponentSet, PointSampler, generate_components
from spatial.demo.districts import Districts
from spatial.demo.grids import GridBuilder, GridSet, urban_density
from spatial.demo.partition import Density, partition, sample_points
from spatial.demo.plan import DistrictPlan, Scale, Town

EXTENT = (116.36, 30.76, 121.96, 35.13)
# The 13 prefecture-level cities of Jiangsu in their code order (3201 … 3213) with approximate real centres.
CITIES = (
    ("南京市", 118.80, 32.06), ("无锡市", 120.31, 31.49), ("徐州市", 117.28, 34.20), ("常州市", 119.97, 31.81),
    ("苏州市", 120.59, 31.30), ("南通市", 120.89, 31.98), ("连云港市", 119.22, 34.60), ("淮安市", 119.02, 33.61),
    ("盐城市", 120.16, 33.35), ("扬州市", 119.41, 32.39), ("镇江市", 119.45, 32.20), ("泰州市", 119.92, 32.46),
    ("宿迁市", 118.28, 33.96),
)


@dataclass(frozen=True)
class ProvinceScale(Scale):
    """Sizes of a province build. The defaults are the issue's province; tests shrink every count."""

    cities: int = 13
    districts_per_city: int = 8
    towns_per_district: int = 12
    communities_per_district: int = 150
    grids_total: int = 150_000
    components: int = 10_000_000
    cases_per_day: int = 300_000
    days: int = 30
    fraction: float = 1.0


PROVINCE = ProvinceScale()


def province_scale(fraction: float = 1.0) -> ProvinceScale:
    """The issue's province with components and cases scaled by ``fraction`` (grid counts kept)."""
    if not 0 < fraction <= 1:
        raise ValueError("the fraction must be in (0, 1]")
    return replace(PROVINCE, components=max(1, round(PROVINCE.components * fraction)),
                   cases_per_day=max(1, round(PROVINCE.cases_per_day * fraction)), fraction=fraction)


def district_shapes(scale: ProvinceScale, rng: np.random.Generator) -> Districts:
    """The cities' Voronoi cells over the extent, each split into its districts."""
    frame = MultiPolygon([shapely.box(*EXTENT)])
    seeds = np.array([[lon, lat] for _, lon, lat in CITIES[:scale.cities]])
    if scale.cities < len(CITIES):  # a test's small province: only these cities' part of the extent
        minx, miny = seeds.min(axis=0) - 0.25
        maxx, maxy = seeds.max(axis=0) + 0.25
        frame = MultiPolygon([shapely.box(minx, miny, maxx, maxy)])
    shapes: dict[str, MultiPolygon] = {}
    names: dict[str, str] = {}
    for index, city in sorted(partition(frame, scale.cities, rng, seeds=seeds) if scale.cities > 1
                              else [(0, frame)]):
        city_name = CITIES[index][0]
        pieces = partition(city, scale.districts_per_city, rng)
        for serial, (_, geom) in enumerate(pieces, start=1):
            code = f"32{index + 1:02d}{serial:02d}"
            shapes[code] = geom
            names[code] = f"{city_name}第{serial}区"
    return Districts(shapes, names, [])


def district_plans(scale: ProvinceScale, districts: Districts, rng: np.random.Generator,
                   town_names) -> list[DistrictPlan]:
    """One full-depth plan per district: sampled town centres, the grid counts spread over the districts."""
    plans = []
    grids = _spread(scale.grids_total, len(districts.shapes))
    for (code, shape), count in zip(sorted(districts.shapes.items()), grids, strict=True):
        centres = sample_points(shape, scale.towns_per_district, rng)
        towns = tuple(Town(name, float(x), float(y))
                      for name, (x, y) in zip(town_names(scale.towns_per_district), centres, strict=True))
        plans.append(DistrictPlan(code=code, towns=towns, communities=scale.communities_per_district, grids=count))
    return plans


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def chunked(density: Density, size: int = 4096) -> Density:
    """``density`` evaluated ``size`` points at a time: a province has 1,248 town centres, and a density over
    all of them at once would need points × centres floats."""
    def evaluate(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        if len(xs) <= size:
            return density(xs, ys)
        return np.concatenate([density(xs[i:i + size], ys[i:i + size]) for i in range(0, len(xs), size)])
    return evaluate


def _merge(parts: list[ComponentSet], offsets: list[int]) -> ComponentSet:
    """The districts' components as one set whose grid indexes point into the province's sorted base grids
    (the case generator reads codes, classes, anchors, grids and owners; the shapes are not kept)."""
    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in parts])
    return ComponentSet(
        codes=joined("codes"), class_codes=joined("class_codes"), anchors=joined("anchors"),
        grid_index=np.concatenate([part.grid_index + offset for part, offset in zip(parts, offsets, strict=True)]),
        geoms=np.empty(0, dtype=object), owners=joined("owners"), status=joined("status"),
        surveyed=joined("surveyed"), changed=joined("changed"), source=joined("source"),
    )


class ProvinceBuilder(Builder):
    """The demo's build steps over the synthetic province: same tables, same COPY paths, other sizes."""

    scale: ProvinceScale

    def _grids(self) -> GridSet:
        districts = district_shapes(self.scale, self.rng)
        plans = district_plans(self.scale, districts, self.rng, self.names.town_names)
        with self._bar(len(plans), "grids: districts built", "district") as bar:
            grids = GridBuilder(districts, self.scale, self.rng, self.names).build_plans(plans, bar)
        self._store_grids(grids, "synthetic Jiangsu province (spatial/demo/province.py)")
        self.report.counts["cities"] = self.scale.cities
        return grids

    def _components(self, grids: GridSet):
        base = sorted(grids.by_kind("base"), key=lambda r: r.code)
        districts = sorted(grids.by_kind("district"), key=lambda r: r.code)
        counts = _spread(self.scale.components, len(districts))
        classes = self._classes()
        parts: list[ComponentSet] = []
        offsets: list[int] = []
        history = 0
        start = 0
        with self._bar(self.scale.components, "components", "comp") as bar:
            for district, count in zip(districts, counts, strict=True):
                end = start
                while end < len(base) and base[end].code.startswith(district.code):
                    end += 1
                mine = base[start:end]
                centres = grids.centres[district.code]
                sampler = PointSampler(district.geom, centres, mine, urban_density(centres, floor=0.003), self.rng)
                made = generate_components(district.code, classes, sampler, count, self.rng)
                history += self._write_components(district.code, mine, made, bar, count)
                made.geoms = np.empty(0, dtype=object)
                parts.append(made)
                offsets.append(start)
                start = end
        self.report.counts["components"] = self.scale.components
        self.report.counts["component_history"] = history
        centres = np.vstack([grids.centres[d.code] for d in districts])
        province = shapely.union_all([d.geom for d in districts])
        sampler = PointSampler(province, centres, base, chunked(urban_density(centres, floor=0.003)), self.rng)
        return _merge(parts, offsets), sampler

    def _cases(self, grids: GridSet, components, sampler: PointSampler) -> None:
        base = sorted(grids.by_kind("base"), key=lambda r: r.code)
        self._write_cases([r.code for r in base], [], components, sampler)
