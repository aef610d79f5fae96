"""Base-model references of managed customization jobs, parsed and matched to the catalog.

Two services name the base model of a fine-tune that no training script of ours runs:

* SageMaker AI serverless model customization: ``ServerlessJobConfig.BaseModelArn``, a SageMaker Public Hub
  content ARN, ``arn:<partition>:sagemaker:<region>:aws:hub-content/SageMakerPublicHub/Model/<name>[/<version>]``
  (pattern from the SageMaker API reference, ``ServerlessJobConfig``; the account is ``aws`` for the public hub
  or a 12-digit id for a private hub). ``<name>`` is a JumpStart model id such as
  ``meta-textgeneration-llama-3-1-8b-instruct``.
* Amazon Bedrock model customization: ``baseModelArn`` of GetModelCustomizationJob, a foundation-model ARN
  ``arn:<partition>:bedrock:<region>::foundation-model/<model id>`` (e.g. ``meta.llama3-1-8b-instruct-v1:0``,
  ``amazon.nova-micro-v1:0``) or a custom-model ARN (a customization of an earlier customization).

``match_customization_base`` reduces either to the catalog (``catalog_names.match_base_model``, which knows JumpStart
prefixes and variant words). A name the catalog does not know is returned unmatched and said so; the caller
stays conservative.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flopsmeter.domain.catalog_names import CatalogMatch, match_base_model
from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.model_names import BEDROCK_MODEL_ID, bedrock_model_name

# SageMaker API reference, ServerlessJobConfig.BaseModelArn (length 1-2048, pattern reproduced field by field).
MAX_ARN_LENGTH = 2048
_HUB_CONTENT_ARN = re.compile(
    r"^arn:(?P<partition>[a-z0-9-.]{1,63}):sagemaker:(?P<region>\w+(?:-\w+)+):(?P<account>\d{12}|aws):"
    r"hub-content/(?P<hub>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/(?P<type>Model)/"
    r"(?P<name>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,63})(?:/(?P<version>\d{1,4}\.\d{1,4}\.\d{1,4}))?$"
)
# Bedrock API reference, ModelCustomizationJobSummary.baseModelArn: foundation-model or custom-model ARNs.
_BEDROCK_MODEL_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[^:]+)?):bedrock:(?P<region>[a-z0-9-]{1,20}):(?P<account>\d{12})?:"
    r"(?P<kind>foundation-model|custom-model)/(?P<id>.+)$"
)


@dataclass(frozen=True)
class HubContentRef:
    """A SageMaker hub content ARN, split into its parts."""

    arn: str
    partition: str
    region: str
    account: str  # "aws" for the SageMaker Public Hub, else the private hub's account id
    hub: str
    content_type: str
    name: str
    version: str | None  # None: "SageMaker always selects the latest version" (API reference)


@dataclass(frozen=True)
class BaseModelRef:
    """What a customization job says about its base model, and the catalog entry it matched (or None)."""

    reference: str  # as the job wrote it (ARN or id)
    name: str  # the model name inside it (hub content name, Bedrock model id)
    source: str  # sagemaker-hub-content | bedrock-foundation-model | bedrock-model-id | bedrock-custom-model | unparsed
    match: CatalogMatch | None
    version: str | None = None
    private_hub_account: str | None = None  # a private SageMaker hub's account: the model may already be modified

    @property
    def model_id(self) -> str:
        """The catalog id when matched, else the name as written."""
        return self.match.model.model_id if self.match else self.name

    def warnings(self) -> tuple[str, ...]:
        found = [*private_hub_warnings(self.private_hub_account, self.name), *(self.match_warnings())]
        return tuple(found)

    def match_warnings(self) -> tuple[str, ...]:
        if self.match is not None:
            return ()
        if self.source == "bedrock-custom-model":
            return (
                f"base model {self.reference} is a custom model (a customization of a customization): its original "
                "base is not followed; classified as an unknown base (conservative)",
            )
        return (f"base model {self.name!r} is not in the bundled catalog: classified as an unknown base "
                "(conservative); declare PRETRAIN_FLOPS to use its threshold",)  # fmt: skip


def private_hub_warnings(account: str | None, name: str) -> tuple[str, ...]:
    """A base model from a private hub may be a modified copy of the public model its name says it is."""
    if account is None:
        return ()
    return (
        f"base model {name[:120]!r} comes from a private SageMaker hub (account {account}): it may already be a "
        "modified model, whose earlier modification compute is not counted here; declare it (FLOPSMETER_PARENT_JOB "
        "or FLOPSMETER_PARENT_FLOPS for the earlier modification, PRETRAIN_FLOPS for the original)",
    )


def private_hub_account(reference: str | None) -> str | None:
    """The account of a private-hub content ARN; None for the SageMaker Public Hub or anything else."""
    try:
        ref = parse_hub_content_arn(reference or "")
    except InvalidModelSpec:
        return None
    return None if ref.account == "aws" else ref.account


def parse_hub_content_arn(arn: str) -> HubContentRef:
    """Split a SageMaker hub content ARN (with or without a version); anything else raises InvalidModelSpec."""
    text = (arn or "").strip()
    found = _HUB_CONTENT_ARN.match(text) if len(text) <= MAX_ARN_LENGTH else None
    if found is None:
        raise InvalidModelSpec(f"not a SageMaker hub content ARN: {text[:200]!r}")
    return HubContentRef(text, found["partition"], found["region"], found["account"], found["hub"], found["type"],
                         found["name"], found["version"])  # fmt: skip


def sagemaker_base_model(arn: str) -> BaseModelRef:
    """The base model of a serverless customization job from its ``BaseModelArn``."""
    try:
        ref = parse_hub_content_arn(arn)
    except InvalidModelSpec:
        text = (arn or "").strip()[:MAX_ARN_LENGTH]
        return BaseModelRef(text, text, "unparsed", match_base_model(text))
    private = None if ref.account == "aws" else ref.account
    return BaseModelRef(ref.arn, ref.name, "sagemaker-hub-content", match_base_model(ref.name), ref.version, private)


def bedrock_base_model(reference: str) -> BaseModelRef:
    """The base model of a Bedrock customization job from its ``baseModelArn`` (or a bare model id)."""
    text = (reference or "").strip()[:MAX_ARN_LENGTH]
    found = _BEDROCK_MODEL_ARN.match(text)
    if found and found["kind"] == "custom-model":
        return BaseModelRef(text, found["id"], "bedrock-custom-model", None)
    model_id = found["id"] if found else text
    source = "bedrock-foundation-model" if found else "bedrock-model-id" if BEDROCK_MODEL_ID.match(text) else "unparsed"
    return BaseModelRef(text, model_id, source, match_base_model(bedrock_model_name(model_id)))
