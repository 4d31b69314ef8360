"""Build the demo grid hierarchy in memory: districts, towns, communities, base grids, special grids, teams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from shapely.geometry import MultiPolygon, Point

from spatial.codes import SPECIAL_LETTERS
from spatial.demo.districts import Districts
from spatial.demo.names import NameMaker
from spatial.demo.partition import KM_PER_DEG_LAT, X_SCALE, allocate, partition, sample_points
from spatial.demo.plan import OTHERS, WUJIANG, WUZHONG, WUZHONG_SPECIALS, DistrictPlan, Scale, Town
from spatial.geo.geometry import polygonal

URBAN_SIGMA_KM = 2.5


@dataclass
class GridRow:
    """One grid to store: identity and current shape."""

    code: str
    level: int | None
    kind: str
    name: str
    parent_code: str | None
    geom: MultiPolygon


@dataclass
class GridSet:
    """Everything the grid step built, with the town centres the later steps place things around."""

    rows: list[GridRow]
    centres: dict[str, np.ndarray]  # district code -> (n, 2) town centres

    def by_kind(self, kind: str, district: str | None = None) -> list[GridRow]:
        """Return the rows of ``kind``, optionally only inside ``district``."""
        return [r for r in self.rows if r.kind == kind and (district is None or r.code.startswith(district))]


def urban_density(centres: np.ndarray, floor: float = 0.04):
    """Return a density function: a floor plus a Gaussian bump around each town centre."""
    def density(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        dx = (xs[:, None] - centres[None, :, 0]) * X_SCALE * KM_PER_DEG_LAT
        dy = (ys[:, None] - centres[None, :, 1]) * KM_PER_DEG_LAT
        bumps = np.exp(-(dx * dx + dy * dy) / (2 * URBAN_SIGMA_KM**2)).sum(axis=1)
        return floor + bumps
    return density


def _inside(shape: MultiPolygon, lon: float, lat: float) -> np.ndarray:
    """Return (lon, lat), moved just inside ``shape`` when the real centre falls outside its polygon."""
    point = Point(lon, lat)
    if shape.contains(point):
        return np.array([lon, lat])
    inner = shape.buffer(-0.002)
    target = inner if not inner.is_empty else shape
    nearest = shapely.ops.nearest_points(target, point)[0]
    return np.array([nearest.x, nearest.y])


def _weights(children: list[MultiPolygon], sample: np.ndarray, density) -> list[float]:
    """Return the density mass of each child, estimated from a shared sample of the parent."""
    tree = shapely.STRtree(children)
    pts = shapely.points(sample)
    values = density(sample[:, 0], sample[:, 1])
    hits, which = tree.query(pts, predicate="within")
    mass = np.zeros(len(children))
    np.add.at(mass, which, values[hits])
    return [float(m) + 1e-9 for m in mass]


class GridBuilder:
    """Builds the hierarchy deterministically from one random generator."""

    def __init__(self, districts: Districts, scale: Scale, rng: np.random.Generator, names: NameMaker) -> None:
        self.districts = districts
        self.scale = scale
        self.rng = rng
        self.names = names
        self.rows: list[GridRow] = []
        self.centres: dict[str, np.ndarray] = {}

    def build(self, progress=None) -> GridSet:
        """Build every district; Wuzhong and Wujiang to level 4, the others to level 2."""
        for code in sorted(self.districts.shapes):
            self.rows.append(GridRow(code, 1, "district", self.districts.names[code], None,
                                     self.districts.shapes[code]))
        for plan in (WUZHONG, WUJIANG):
            self._full_district(plan)
            if progress:
                progress.update(1)
        for plan in OTHERS:
            self._towns_only(plan)
            if progress:
                progress.update(1)
        self._wuzhong_specials()
        self._enterprise_grids(WUJIANG)
        return GridSet(self.rows, self.centres)

    def build_plans(self, plans: list[DistrictPlan], progress=None) -> GridSet:
        """Build every district of ``plans`` to level 4 (the province generator, spatial/demo/province.py)."""
        for code in sorted(self.districts.shapes):
            self.rows.append(GridRow(code, 1, "district", self.districts.names[code], None,
                                     self.districts.shapes[code]))
        for plan in plans:
            self._full_district(plan)
            if progress:
                progress.update(1)
        return GridSet(self.rows, self.centres)

    def _towns(self, plan: DistrictPlan, towns: tuple[Town, ...]) -> list[tuple[GridRow, Town]]:
        shape = self.districts.shapes[plan.code]
        seeds = np.array([_inside(shape, t.lon, t.lat) for t in towns])
        self.centres[plan.code] = seeds
        pieces = partition(shape, len(towns), self.rng, seeds=seeds)
        streets = iter(range(1, 100))
        townships = iter(range(100, 200))
        made = []
        for index, geom in sorted(pieces, key=lambda p: p[0]):
            town = towns[index]
            serial = next(streets) if town.is_street else next(townships)
            row = GridRow(f"{plan.code}{serial:03d}", 2, "town", town.name, plan.code, geom)
            self.rows.append(row)
            made.append((row, town))
        return made

    def _towns_only(self, plan: DistrictPlan) -> None:
        shape = self.districts.shapes[plan.code]
        names = self.names.town_names(plan.town_count)
        seeds = sample_points(shape, plan.town_count, self.rng)
        towns = tuple(Town(name, float(x), float(y)) for name, (x, y) in zip(names, seeds, strict=True))
        self._towns(plan, towns)

    def _full_district(self, plan: DistrictPlan) -> None:
        towns = self._towns(plan, plan.towns)
        density = urban_density(self.centres[plan.code])
        district = self.districts.shapes[plan.code]
        sample = sample_points(district, 40_000, self.rng)
        town_shapes = [row.geom for row, _ in towns]
        shares = allocate(self.scale.communities(plan), _weights(town_shapes, sample, density), minimum=2)
        communities: list[GridRow] = []
        for (town_row, _), count in zip(towns, shares, strict=True):
            communities.extend(self._communities(town_row, count, density))
        grid_shares = allocate(
            self.scale.grids(plan), _weights([c.geom for c in communities], sample, density), minimum=1
        )
        for community, count in zip(communities, grid_shares, strict=True):
            for serial, (_, geom) in enumerate(partition(community.geom, count, self.rng, density), start=1):
                self.rows.append(GridRow(f"{community.code}{serial:03d}", 4, "base",
                                         f"{community.name}第{serial}网格", community.code, geom))

    def _communities(self, town: GridRow, count: int, density) -> list[GridRow]:
        pieces = partition(town.geom, count, self.rng, density)
        points = np.array([[g.representative_point().x, g.representative_point().y] for _, g in pieces])
        urban = [bool(v > 0.5) for v in density(points[:, 0], points[:, 1])]
        names = self.names.places(count, urban)
        made = []
        next_urban, next_rural = 1, 201
        for (_, geom), is_urban, name in zip(pieces, urban, names, strict=True):
            serial = next_urban if is_urban else next_rural
            next_urban, next_rural = (next_urban + 1, next_rural) if is_urban else (next_urban, next_rural + 1)
            row = GridRow(f"{town.code}{serial:03d}", 3, "community", name, town.code, geom)
            self.rows.append(row)
            made.append(row)
        return made

    def _special(self, district: str, kind: str, serial: int, name: str, geom) -> None:
        code = f"{district}{SPECIAL_LETTERS[kind]}{serial:04d}"
        clipped = polygonal(geom.intersection(self.districts.shapes[district]))
        if not clipped.is_empty:
            self.rows.append(GridRow(code, None, kind, name, district, clipped))

    def _wuzhong_specials(self) -> None:
        serials: dict[str, int] = {}
        for kind, name, lon, lat, km in WUZHONG_SPECIALS:
            serials[kind] = serials.get(kind, 0) + 1
            half_x, half_y = km / 2 / (KM_PER_DEG_LAT * X_SCALE), km / 2 / KM_PER_DEG_LAT
            blob = shapely.box(lon - half_x, lat - half_y, lon + half_x, lat + half_y).buffer(half_y / 3)
            self._special(WUZHONG.code, kind, serials[kind], name, blob)

    def _enterprise_grids(self, plan: DistrictPlan) -> None:
        count = self.scale.enterprise_grids(plan)
        centres = np.array(plan.industrial_centres)
        placed: list = []
        firms = ("纺织", "丝绸", "电子", "机械", "化纤", "电缆", "新材料", "光电", "装备", "印染")
        while len(placed) < count:
            centre = centres[self.rng.integers(len(centres))]
            lon = centre[0] + self.rng.normal(0, 0.03)
            lat = centre[1] + self.rng.normal(0, 0.02)
            width_km, height_km = self.rng.uniform(0.4, 1.1, size=2)
            half_x, half_y = width_km / 2 / (KM_PER_DEG_LAT * X_SCALE), height_km / 2 / KM_PER_DEG_LAT
            box = shapely.affinity.rotate(
                shapely.box(lon - half_x, lat - half_y, lon + half_x, lat + half_y), self.rng.uniform(-30, 30)
            )
            if not self.districts.shapes[plan.code].contains(box) or any(box.intersects(p) for p in placed):
                continue
            placed.append(box)
            name = f"{firms[len(placed) % len(firms)]}企业网格{len(placed):03d}"
            self._special(plan.code, "enterprise", len(placed), name, box)
