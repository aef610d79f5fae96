"""Synthesis helpers for the infra tests: each module synthesizes once (a full synth takes ~10 s)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

pytestmark = pytest.mark.infra

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    outdir: Path
    asset_dir: Path
    stack_name: str

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def one(self, cfn_type: str, logical_prefix: str = "") -> tuple[str, dict[str, Any]]:
        found = [(k, v) for k, v in self.of_type(cfn_type).items() if k.startswith(logical_prefix)]
        assert len(found) == 1, f"expected one {cfn_type} starting {logical_prefix!r}, found {[k for k, _ in found]}"
        return found[0]


def synthesize(tmp: Path, **overrides: Any) -> Synthesized:
    """cdk.json context + ``overrides``, through the same ``build_app`` as app.py (cdk-nag on), synthesized."""
    from infra.synth import build_app, cdk_json_context

    outdir, asset_dir = tmp / "cdk.out", tmp / "asset"
    app, stack = build_app({**cdk_json_context(), **NO_BUNDLING, **overrides}, outdir=str(outdir), asset_dir=asset_dir)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesized(json.loads(json.dumps(template)), outdir, asset_dir, stack.stack_name)
