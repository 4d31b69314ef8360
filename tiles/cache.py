"""Building and caching vector tiles, with invalidation that is never stale for grids and components.

A cached tile is keyed by its layer, z/x/y, filter and the generation of its layer group, read at the start
of each request from counters that triggers bump inside the writing transaction — so the first request
after a commit misses the cache and sees the change:
- grids and components: one row each in ``tile_generation`` (migration 0010);
- cases, written at intake rates: the sum of ``tile_case_shard``, one row per database backend, so that
  concurrent intake never waits on a shared counter (migration 0011).
ETags are content hashes, so they agree across worker processes and a 304 is only ever given for the same
bytes. The cache is a byte-bounded LRU per process. When a group's generation moves on, every entry of the
older generations is dropped at once (they can never be served again): under steady intake the case tiles
would otherwise fill the cache with dead entries until the byte bound pushed them out. A tile built from an
older snapshot than the newest seen is served but not kept.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from spatial.errors import InvalidParameterError, NotFoundError
from spatial.store.partitions import open_span
from tiles.layers import CASE_STATES, LAYERS, MAX_ZOOM, parts_of, tile_params, tile_sql


@dataclass(frozen=True)
class Tile:
    """Encoded MVT bytes and their ETag."""

    data: bytes
    etag: str


EMPTY = Tile(b"", '"empty"')


class TileCache:
    """Tiles by (layer, z, x, y, filter, generation); see the module docstring."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[tuple, Tile] = OrderedDict()
        self.newest: dict[str, int] = {}  # layer group → newest generation seen
        self.by_group: dict[str, set[tuple]] = {}  # layer group → keys of its cached tiles
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def tile(self, conn: Connection, name: str, z: int, x: int, y: int, *, state: str | None = None,
             scope: tuple[str, str] | None = None) -> Tile:
        """The tile, from the cache when its generation still holds, else built in PostGIS. ``scope``: the
        reader's case scope (``spatial.access.scope.case_filter``); only cases are narrowed by it. NotFoundError
        for an unknown layer, InvalidParameterError for an impossible tile or an unknown filter."""
        layer = LAYERS.get(name)
        if layer is None:
            raise NotFoundError(f"no tile layer {name!r}; layers: {', '.join(LAYERS)}")
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
            raise InvalidParameterError(f"no tile {z}/{x}/{y}: z in 0…{MAX_ZOOM}, x and y in 0…2^z−1",
                                        parameter="tile")
        if state is not None and (name != "cases" or state not in CASE_STATES):
            raise InvalidParameterError(f"state filters open cases only: one of {', '.join(CASE_STATES)}",
                                        parameter="state")
        if z < layer.minzoom:
            return EMPTY  # below the layer's first zoom (tiles/layers.py): nothing to read
        if layer.group == "cases":
            generation = int(conn.execute(text("SELECT coalesce(sum(n), 0) FROM tile_case_shard")).scalar_one())
        else:
            generation = int(conn.execute(text("SELECT generation FROM tile_generation WHERE name = :n"),
                                          {"n": layer.group}).scalar_one())
        if layer.group != "cases":
            scope = None
        key = (name, z, x, y, state, scope, generation)
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                self.hits += 1
                return found
        span = open_span(conn) if any(part.group == "cases" for part in parts_of(layer)) else None
        data = bytes(conn.execute(text(tile_sql(layer, z, state=state, scope_kind=scope[0] if scope else None)),
                                  tile_params(z, x, y, state=state, scope=scope, span=span)).scalar() or b"")
        tile = Tile(data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')
        with self.lock:
            self.misses += 1
            self._keep(layer.group, generation, key, tile)
        return tile

    def _keep(self, group: str, generation: int, key: tuple, tile: Tile) -> None:
        newest = self.newest.get(group, -1)
        if generation < newest or key in self.entries:
            return
        if generation > newest:
            self.newest[group] = generation
            for old in self.by_group.pop(group, set()):
                self.size -= len(self.entries.pop(old).data)
        self.entries[key] = tile
        self.by_group.setdefault(group, set()).add(key)
        self.size += len(tile.data)
        while self.size > self.max_bytes and self.entries:
            dropped_key, dropped = self.entries.popitem(last=False)
            self.size -= len(dropped.data)
            self.by_group[LAYERS[dropped_key[0]].group].discard(dropped_key)
