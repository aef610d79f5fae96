"""What a training job reads and writes, as lineage sees it (from DescribeTrainingJob).

Reads (where a parent can be found): S3 input channels, the checkpoint prefix (SageMaker copies it in when the
job starts), S3 URIs in hyper-parameters and environment values (a model path), and the model package a
serverless customization job continues from. Writes (what the lineage index records for later jobs): the model
artifacts, the job's own output prefix, the checkpoint prefix and the model package it produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flopsmeter import contract
from flopsmeter.domain.lineage import MAX_LOCATIONS, ArtifactRole, ParentSource, normalise_s3_uri, s3_uris_in

# Our own settings are never model paths (FLOPSMETER_BASE_MODEL may name an S3 path of the *base* model).
_OWN_SETTINGS = frozenset(
    {contract.ENV_BASE_MODEL, contract.ENV_PARENT_JOB, contract.ENV_PARENT_FLOPS, contract.ENV_PRETRAIN_FLOPS}
)


@dataclass(frozen=True)
class Read:
    source: ParentSource
    location: str  # a normalised S3 URI, or a model package ARN


@dataclass(frozen=True)
class Written:
    role: ArtifactRole
    location: str


@dataclass(frozen=True)
class LineageIO:
    reads: tuple[Read, ...] = ()
    writes: tuple[Written, ...] = ()
    skipped_reads: int = 0  # beyond MAX_LOCATIONS: not looked up, so the lineage cannot be called complete
    model_package_group_arn: str | None = None
    output_model_package_arn: str | None = None


def lineage_io_of(description: Mapping[str, Any]) -> LineageIO:
    """The job's reads (deduplicated, bounded) and writes, from its DescribeTrainingJob output."""
    reads = list(dict.fromkeys(_reads(description)))
    package = _mapping(description.get("ModelPackageConfig"))
    group = package.get("ModelPackageGroupArn")
    output_package = description.get("OutputModelPackageArn")
    return LineageIO(
        reads=tuple(reads[:MAX_LOCATIONS]),
        writes=tuple(dict.fromkeys(_writes(description))),
        skipped_reads=max(0, len(reads) - MAX_LOCATIONS),
        model_package_group_arn=group if isinstance(group, str) and group else None,
        output_model_package_arn=output_package if isinstance(output_package, str) and output_package else None,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _reads(description: Mapping[str, Any]) -> list[Read]:
    found: list[Read] = []
    channels = description.get("InputDataConfig")
    for channel in channels if isinstance(channels, list) else []:
        source = _mapping(_mapping(_mapping(channel).get("DataSource")).get("S3DataSource"))
        found += _uri(ParentSource.INPUT_CHANNEL, source.get("S3Uri"))
    found += _uri(ParentSource.CHECKPOINT, _mapping(description.get("CheckpointConfig")).get("S3Uri"))
    found += _texts(ParentSource.HYPERPARAMETER, _mapping(description.get("HyperParameters")))
    environment = _mapping(description.get("Environment"))
    found += _texts(ParentSource.ENVIRONMENT, {k: v for k, v in environment.items() if k not in _OWN_SETTINGS})
    source_package = _mapping(description.get("ModelPackageConfig")).get("SourceModelPackageArn")
    if isinstance(source_package, str) and source_package.strip():
        found.append(Read(ParentSource.MODEL_PACKAGE, source_package.strip()))
    return found


def _uri(source: ParentSource, value: Any) -> list[Read]:
    location = normalise_s3_uri(value) if isinstance(value, str) else None
    return [] if location is None else [Read(source, location)]


def _texts(source: ParentSource, values: Mapping[str, Any]) -> list[Read]:
    return [Read(source, uri) for value in values.values() if isinstance(value, str) for uri in s3_uris_in(value)]


def _writes(description: Mapping[str, Any]) -> list[Written]:
    found: list[Written] = []
    artifacts = normalise_s3_uri(str(_mapping(description.get("ModelArtifacts")).get("S3ModelArtifacts") or ""))
    if artifacts:
        found.append(Written(ArtifactRole.MODEL_ARTIFACTS, artifacts))
    output = normalise_s3_uri(str(_mapping(description.get("OutputDataConfig")).get("S3OutputPath") or ""))
    name = description.get("TrainingJobName")
    if output and isinstance(name, str) and name:
        found.append(Written(ArtifactRole.OUTPUT, f"{output}/{name}"))
    checkpoint = normalise_s3_uri(str(_mapping(description.get("CheckpointConfig")).get("S3Uri") or ""))
    if checkpoint:
        found.append(Written(ArtifactRole.CHECKPOINT, checkpoint))
    package = description.get("OutputModelPackageArn")
    if isinstance(package, str) and package.strip():
        found.append(Written(ArtifactRole.MODEL_PACKAGE, package.strip()))
    return found
