"""The gridlink data model (SQLAlchemy 2 + GeoAlchemy2). The schema itself changes only through Alembic.

Glossary of the domain terms used across the code:
网格 grid · 单元网格 base grid · 专属网格 special grid · 部件 component · 权属单位 owner ·
养护单位 maintainer · 主管部门 managing department · 事件 event · 案件 case · 立案 register ·
派遣 dispatch · 处置 handle · 核查 check · 结案 close · 考核评价 evaluate · 属地兜底 locality as owner of last resort.
"""

from spatial.store.models.accounts import Account, ApiToken, AuditEntry, RateCounter
from spatial.store.models.base import Base
from spatial.store.models.cases import Case, CaseEvent, CaseKey, CasePhoto, CaseUnit, KpiRollup
from spatial.store.models.components import Component, ComponentHistory, ComponentUploadJob
from spatial.store.models.grids import Grid, GridGeometry, GridPlan, GridPlanEdit, GridVersion, TeamMember
from spatial.store.models.reference import (
    ComponentClass,
    Department,
    EventCategory,
    Holiday,
    Meta,
    RowCount,
    TileCaseShard,
    TileGeneration,
)

__all__ = [
    "Account", "ApiToken", "AuditEntry", "Base", "Case", "CaseEvent",
    "CaseKey", "CasePhoto", "CaseUnit", "Component",
    "ComponentClass", "ComponentHistory", "ComponentUploadJob", "Department", "EventCategory", "Grid",
    "GridGeometry", "GridPlan", "GridPlanEdit", "GridVersion", "Holiday", "KpiRollup", "Meta", "RateCounter",
    "RowCount",
    "TeamMember", "TileCaseShard", "TileGeneration",
]
