"""Build the CDK app from ``cdk.json`` context (plus overrides) without any AWS call: used by app.py and tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.assets import DEFAULT_ASSET_DIR, stage_lambda_asset
from infra.config import DeployConfig, feature_flags
from infra.config import cdk_json_context as cdk_json_context  # re-exported: tests and scripts read it from here
from infra.member import member_stack_name
from infra.stack import FlopsMeterStack
from infra.stackset import MemberStackSetStack, stack_set_stack_name


def stack_name(config: DeployConfig) -> str:
    return f"FlopsMeter-{config.stage}"


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    asset_dir: Path | None = None,
    default_region: str | None = None,
) -> tuple[cdk.App, FlopsMeterStack]:
    """Validate the context into a ``DeployConfig`` (``ConfigError`` if bad), stage the Lambda asset, build
    the stack (and in organization mode the member StackSet's own stack, ``stack.members``, deployed after it) and
    turn cdk-nag on. Context from the CDK CLI (``-c key=value``) overrides ``context``.

    The stack is region-agnostic unless a region is known: the ``region`` context, else ``default_region``
    (app.py passes the CLI's ``CDK_DEFAULT_REGION``); then synth checks region-bound choices (the Powertools
    layer) instead of leaving them to a CloudFormation rule. The account is always left to deploy time."""
    app = cdk.App(context=dict(context or {}), outdir=outdir)
    config = DeployConfig.from_context(app.node)
    staged = stage_lambda_asset(asset_dir or DEFAULT_ASSET_DIR)
    # The account comes from the CLI's credentials at deploy time; synth needs no credentials.
    env = cdk.Environment(account=None, region=config.region or default_region)
    stack = FlopsMeterStack(
        app,
        stack_name(config),
        config=config,
        asset_dir=str(staged),
        description="FLOPs Meter: EU AI Act compute compliance for SageMaker fine-tuning (audit trail, classifier)",
        env=env,
    )
    if stack.organization is not None:
        stack.members = MemberStackSetStack(
            app,
            stack_set_stack_name(config.stage),
            config=config,
            intake=stack.organization,
            flags=feature_flags(context or {}),
            description="FLOPs Meter: the StackSet that deploys the member stack to the organization's accounts",
            env=env,
        )
        stack.members.add_stack_dependency(stack, "the StackSet passes the bus and the functions' role ARNs")
    for deployed in app.node.children:
        if isinstance(deployed, cdk.Stack):
            cdk.Tags.of(deployed).add("application", "flopsmeter")
            cdk.Tags.of(deployed).add("stage", config.stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def write_member_template(stack: FlopsMeterStack, outdir: str) -> Path | None:
    """Organization mode: write the member stack's template next to the compliance stack's, so that cfn-lint and
    checkov (``cdk.out/*.template.json``) scan it too; the StackSet carries the same template inline."""
    if stack.members is None:
        return None
    path = Path(outdir) / f"{member_stack_name(stack.config.stage)}.template.json"
    path.write_text(json.dumps(stack.members.member_template, indent=1))
    return path
