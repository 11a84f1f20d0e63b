"""Named variants and the tuning / held-out split (decision 0013)."""

from __future__ import annotations

import pytest

from app.synthetic import PopulationConfig, generate
from app.synthetic.variants import HELD_OUT, HELD_OUT_SEEDS, TUNING, TUNING_SEEDS, VARIANTS, is_held_out


class TestVariants:
    def test_every_variant_builds_a_valid_config_that_differs_from_the_default(self) -> None:
        default = PopulationConfig(children=1_000, seed=0)
        for name, variant in VARIANTS.items():
            config = variant.config(1_000, seed=0)
            assert (config == default) == (name == "default"), name

    def test_split_is_a_partition_with_disjoint_seeds(self) -> None:
        assert set(TUNING) | set(HELD_OUT) == set(VARIANTS)
        assert not set(TUNING) & set(HELD_OUT)
        assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
        assert all(VARIANTS[name].config(100).seed in HELD_OUT_SEEDS for name in HELD_OUT)
        assert is_held_out("default", HELD_OUT_SEEDS[0]) and not is_held_out("default", TUNING_SEEDS[0])

    @pytest.mark.parametrize("name", sorted(VARIANTS))
    def test_every_variant_generates(self, name: str) -> None:
        population = generate(VARIANTS[name].config(1_500))
        assert population.health_records and population.education_records
