"""Plausible Chinese names for the demo: communities, villages, people, phone numbers."""

from __future__ import annotations

import numpy as np

SURNAMES = (
    "张王李赵陈刘杨黄周吴徐孙朱马胡郭林何高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕丁沈"
    "任姚卢钟姜崔谭陆汪范金石廖贾夏方邹孟熊秦邱江薛顾毛钱严施"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰建国志红文斌宇浩凯晨欣怡雯婷佳俊峰亮琳雪梅海燕"
PLACE = (
    "金山湖桥塘浜港泾河湾庄园苑新东西南北长安宁和兴盛华丰旺吉祥福越溪香枫竹梅荷莲兰松柏石泉林清明光龙凤"
    "鹿胥渎湘江浦渡田旺胜利民乐家园田庙圩墩荡渔"
)
PHONE_PREFIXES = ("133", "135", "136", "138", "139", "150", "151", "152", "158", "159", "180", "181", "187", "189")


class NameMaker:
    """Deterministic name generator (one per demo build, seeded)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def person(self) -> str:
        """Return a two- or three-character personal name."""
        surname = SURNAMES[self.rng.integers(len(SURNAMES))]
        count = 1 if self.rng.random() < 0.35 else 2
        return surname + "".join(GIVEN[i] for i in self.rng.integers(len(GIVEN), size=count))

    def phone(self) -> str:
        """Return an 11-digit mobile number."""
        prefix = PHONE_PREFIXES[self.rng.integers(len(PHONE_PREFIXES))]
        return prefix + "".join(str(d) for d in self.rng.integers(10, size=8))

    def places(self, count: int, urban: list[bool]) -> list[str]:
        """Return ``count`` distinct community (社区) or village (村) names."""
        names: list[str] = []
        seen: set[str] = set()
        for index in range(count):
            while True:
                first, second = self.rng.integers(len(PLACE), size=2)
                stem = PLACE[first] + PLACE[second]
                if first != second and stem not in seen:
                    break
            seen.add(stem)
            names.append(stem + ("社区" if urban[index] else "村"))
        return names

    def town_names(self, count: int) -> list[str]:
        """Return ``count`` distinct town (镇) names for districts without a name list."""
        stems = self.places(count, [True] * count)
        return [stem.removesuffix("社区") + ("街道" if i % 3 == 0 else "镇") for i, stem in enumerate(stems)]
