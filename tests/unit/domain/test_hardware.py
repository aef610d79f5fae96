"""Hardware ceiling per SageMaker instance type."""

from __future__ import annotations

import math

import pytest

from flopsmeter.domain.hardware import INSTANCE_CATALOG, hardware_ceiling, lookup_instance


def test_p5_ceiling_is_chips_times_seconds_times_fp8_peak() -> None:
    ceiling = hardware_ceiling("ml.p5.48xlarge", 2, 3600)
    assert ceiling.known_instance and not ceiling.warnings
    assert ceiling.flops == pytest.approx(2 * 8 * 3600 * 1978.9e12)
    assert ceiling.bf16_flops == pytest.approx(2 * 8 * 3600 * 989.4e12)
    assert ceiling.precision == "fp8"


@pytest.mark.parametrize(
    "family",
    ["ml.p4d", "ml.p4de", "ml.p5", "ml.p5e", "ml.p5en", "ml.p6-b200", "ml.p6-b300", "ml.p6e-gb200", "ml.g5", "ml.g6",
     "ml.g6e", "ml.g7e", "ml.g7", "ml.gr6", "ml.trn1", "ml.trn1n", "ml.trn2", "ml.trn2u", "ml.p3", "ml.p2", "ml.g4dn"],
)  # fmt: skip
def test_every_required_family_is_in_the_catalog(family: str) -> None:
    assert any(key.startswith(family + ".") for key in INSTANCE_CATALOG)


def test_instance_lookup_tolerates_missing_prefix_and_case() -> None:
    assert lookup_instance("P4D.24XLARGE") is INSTANCE_CATALOG["ml.p4d.24xlarge"]


def test_unknown_instance_type_warns_and_stays_above_every_known_instance() -> None:
    ceiling = hardware_ceiling("ml.x99.mega", 1, 10)
    assert not ceiling.known_instance
    assert ceiling.warnings and "ml.x99.mega" in ceiling.warnings[0]
    assert all(ceiling.flops >= hardware_ceiling(k, 1, 10).flops > 0 for k in INSTANCE_CATALOG)


@pytest.mark.parametrize(
    ("instance_type", "chips", "fp4_tflops"),
    [("ml.p6-b200.48xlarge", 8, 9000.0), ("ml.p6-b300.48xlarge", 8, 15000.0), ("ml.p6e-gb200.36xlarge", 4, 10000.0)],
)
def test_blackwell_fp4_dense_peak_bounds_the_ceiling(instance_type: str, chips: int, fp4_tflops: float) -> None:
    ceiling = hardware_ceiling(instance_type, 1, 3600)
    assert ceiling.precision == "fp4" and ceiling.chips_per_instance == chips
    assert ceiling.flops == pytest.approx(chips * 3600 * fp4_tflops * 1e12)
    assert ceiling.flops > ceiling.bf16_flops * 3


def _botocore_accelerated_types() -> set[str]:
    """Every accelerated SageMaker training / HyperPod instance type in the installed botocore's service model."""
    session = pytest.importorskip("botocore.session")
    model = session.get_session().get_service_model("sagemaker")
    types: set[str] = set()
    for shape in ("TrainingInstanceType", "ClusterInstanceType"):
        types |= {t for t in model.shape_for(shape).enum if t.split(".")[1].startswith(("p", "g", "trn"))}
    return types


def test_every_accelerated_sagemaker_training_instance_type_is_in_the_catalog() -> None:
    missing = sorted(_botocore_accelerated_types() - set(INSTANCE_CATALOG))
    assert not missing, f"add these instance types to flopsmeter/domain/hardware.py: {missing}"


def test_every_accelerator_names_its_source_and_sparsity_is_never_hidden() -> None:
    for spec in INSTANCE_CATALOG.values():
        acc = spec.accelerator
        assert acc.source and acc.bf16_dense_tflops > 0
        if acc.fp4_dense_tflops and "sparsity" in acc.source:
            assert "dense" in acc.source  # a sparse figure kept as a bound says what the dense peak is


@pytest.mark.parametrize(("count", "seconds"), [(0, 10), (-1, 10), (1.5, 10), (True, 10), (1, -1), (1, math.nan),
                                                (1, math.inf), (1, "10")])  # fmt: skip
def test_invalid_count_or_seconds_is_rejected(count: object, seconds: object) -> None:
    with pytest.raises(ValueError):
        hardware_ceiling("ml.p5.48xlarge", count, seconds)  # type: ignore[arg-type]
