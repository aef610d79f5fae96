"""The Powertools for AWS Lambda (Python) layer, resolved for the stack's region and partition, version pinned.

Powertools publishes each release's layer ARN as a public SSM parameter,
``/aws/service/powertools/python/<arch>/<runtime>/<version>``, in the regions of its publishing workflow
(``POWERTOOLS_SSM_REGIONS``, the ``aws`` partition only: the China and GovCloud layers have no parameters).
The function's layer is ``{{resolve:ssm:<that name>}}``, so CloudFormation resolves the ARN in the region the
stack deploys to, from the pinned release; nothing is looked up at synth.

Where the layer is unavailable the stack must not deploy half-working: with a known region (``region`` context
or the CDK CLI's ``CDK_DEFAULT_REGION``) synth stops with ``LayerUnavailable``; a region-agnostic template
carries a CloudFormation rule that stops the deployment, before anything is created, with the same message.

The dev dependencies are pinned to what this layer ships (pyproject.toml ``dev`` extra; tests check the pins):
the layer is ``aws-lambda-powertools[all]==POWERTOOLS_VERSION`` installed when the release was built, which
resolved ``pydantic`` to ``LAYER_PYDANTIC_VERSION``.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnDynamicReference, CfnDynamicReferenceService, CfnRule, CfnRuleAssertion, Fn, Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

POWERTOOLS_VERSION = "3.24.0"
LAYER_PYDANTIC_VERSION = "2.12.5"
# Newest Python runtime the Powertools v3 layer is published for; the functions run it on Graviton.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# The regions Powertools' SSM workflow writes parameters to (.github/workflows/update_ssm.yml), all in "aws".
POWERTOOLS_SSM_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)


class LayerUnavailable(ValueError):
    """The pinned Powertools layer is not published (with its SSM parameter) in the target region."""


def parameter_name(version: str = POWERTOOLS_VERSION) -> str:
    return f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{version}"


def unavailable_message(region: str) -> str:
    return (
        f"the Powertools layer {POWERTOOLS_VERSION} ({RUNTIME.name}, {ARCHITECTURE.name}) has no public SSM parameter "
        f"{parameter_name()} in region {region!r}: Powertools publishes it in the aws partition only, in "
        + ", ".join(POWERTOOLS_SSM_REGIONS)
        + ". Deploy to one of those regions (China and GovCloud have the layer under other accounts, not wired here)."
    )


def check_region(region: str) -> None:
    """Raise ``LayerUnavailable`` where the layer's SSM parameter is not published."""
    if region not in POWERTOOLS_SSM_REGIONS:
        raise LayerUnavailable(unavailable_message(region))


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The pinned layer for the stack's region; fails synth (known region) or the deployment (agnostic) where
    it is not published."""
    stack = Stack.of(scope)
    if Token.is_unresolved(stack.region):
        CfnRule(
            stack,
            "PowertoolsLayerAvailable",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(POWERTOOLS_SSM_REGIONS), Aws.REGION),
                    assert_description=unavailable_message("<this region>"),
                )
            ],
        )
    else:
        check_region(stack.region)
    arn = CfnDynamicReference(CfnDynamicReferenceService.SSM, parameter_name()).to_string()
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)
