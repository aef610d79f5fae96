"""Issue 12.6: the Powertools layer is resolved for the stack's region and partition from its public SSM parameter,
pinned, and a region without it stops synth (known region) or the deployment (agnostic template) with a clear
message; the dev dependencies are the versions that layer ships."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from infra.assets import REPO_ROOT
from infra.config import cdk_json_context
from infra.layer import LAYER_PYDANTIC_VERSION, POWERTOOLS_SSM_REGIONS, POWERTOOLS_VERSION, LayerUnavailable
from infra.synth import build_app
from tests.infra.template import NO_BUNDLING, Synthesized

pytestmark = pytest.mark.infra

PARAMETER = f"/aws/service/powertools/python/arm64/python3.14/{POWERTOOLS_VERSION}"


def test_every_function_resolves_the_pinned_layer_in_its_own_region(synth: Synthesized) -> None:
    for fn in synth.of_type("AWS::Lambda::Function").values():
        assert fn["Properties"]["Layers"] == ["{{resolve:ssm:" + PARAMETER + "}}"]
    assert re.fullmatch(r"3\.\d+\.\d+", POWERTOOLS_VERSION)


def test_an_agnostic_template_refuses_to_deploy_where_the_layer_is_not_published(synth: Synthesized) -> None:
    (assertion,) = synth.template["Rules"]["PowertoolsLayerAvailable"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Contains": [list(POWERTOOLS_SSM_REGIONS), {"Ref": "AWS::Region"}]}
    assert PARAMETER in assertion["AssertDescription"] and "aws partition only" in assertion["AssertDescription"]
    assert {"eu-west-1", "us-east-1", "eu-central-1"} <= set(POWERTOOLS_SSM_REGIONS)
    assert not any(r.startswith(("cn-", "us-gov-")) for r in POWERTOOLS_SSM_REGIONS)


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "eu-isoe-west-1"])
def test_synth_for_a_region_without_the_layer_stops_with_a_clear_message(tmp_path: Path, region: str) -> None:
    with pytest.raises(LayerUnavailable) as caught:
        build_app({**cdk_json_context(), **NO_BUNDLING, "region": region}, asset_dir=tmp_path / "asset")
    message = str(caught.value)
    assert region in message and PARAMETER in message and "eu-west-1" in message


def test_a_known_supported_region_needs_no_deploy_time_rule(tmp_path: Path) -> None:
    _, stack = build_app(cdk_json_context(), asset_dir=tmp_path / "asset", default_region="eu-central-2")
    assert stack.region == "eu-central-2"
    assert stack.node.try_find_child("PowertoolsLayerAvailable") is None


def test_dev_dependencies_are_what_the_layer_ships() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert f"aws-lambda-powertools=={POWERTOOLS_VERSION}" in dev
    assert f"pydantic=={LAYER_PYDANTIC_VERSION}" in dev
