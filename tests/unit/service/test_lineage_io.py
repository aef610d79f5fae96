"""What a job reads and writes, as lineage sees it, from DescribeTrainingJob."""

from __future__ import annotations

from flopsmeter.domain.lineage import MAX_LOCATIONS, ArtifactRole, ParentSource
from flopsmeter.service.lineage_io import Read, Written, lineage_io_of

B = "s3://ml-artifacts-123"


def test_reads_every_source_normalised_and_deduplicated():
    io = lineage_io_of(
        {
            "TrainingJobName": "j",
            "InputDataConfig": [
                {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3Uri": f"{B}/out/p/output/"}}},
                {"ChannelName": "train", "DataSource": {"FileSystemDataSource": {"DirectoryPath": "/fsx/x"}}},
            ],
            "CheckpointConfig": {"S3Uri": f"{B}/ckpt/"},
            "HyperParameters": {"model": f'"{B}/out/p/output"', "lr": "1e-5"},
            "Environment": {"MODEL_DIR": f"{B}/m", "FLOPSMETER_BASE_MODEL": f"{B}/base", "PRETRAIN_FLOPS": "1e24"},
            "ModelPackageConfig": {"SourceModelPackageArn": "arn:pkg/1", "ModelPackageGroupArn": "arn:grp"},
        }
    )
    assert io.reads == (
        Read(ParentSource.INPUT_CHANNEL, f"{B}/out/p/output"),
        Read(ParentSource.CHECKPOINT, f"{B}/ckpt"),
        Read(ParentSource.HYPERPARAMETER, f"{B}/out/p/output"),
        Read(ParentSource.ENVIRONMENT, f"{B}/m"),  # not the base model path, not our own settings
        Read(ParentSource.MODEL_PACKAGE, "arn:pkg/1"),
    )
    assert io.model_package_group_arn == "arn:grp" and io.skipped_reads == 0


def test_writes_artifacts_own_output_prefix_checkpoint_and_package():
    io = lineage_io_of(
        {
            "TrainingJobName": "j",
            "ModelArtifacts": {"S3ModelArtifacts": f"{B}/out/j/output/model.tar.gz"},
            "OutputDataConfig": {"S3OutputPath": f"{B}/out/"},
            "CheckpointConfig": {"S3Uri": f"{B}/ckpt"},
            "OutputModelPackageArn": "arn:pkg/2",
        }
    )
    assert io.writes == (
        Written(ArtifactRole.MODEL_ARTIFACTS, f"{B}/out/j/output/model.tar.gz"),
        Written(ArtifactRole.OUTPUT, f"{B}/out/j"),
        Written(ArtifactRole.CHECKPOINT, f"{B}/ckpt"),
        Written(ArtifactRole.MODEL_PACKAGE, "arn:pkg/2"),
    )
    assert io.output_model_package_arn == "arn:pkg/2"


def test_reads_are_bounded_and_the_rest_counted():
    params = {f"p{i}": f"{B}/in/{i}" for i in range(MAX_LOCATIONS + 5)}
    io = lineage_io_of({"TrainingJobName": "j", "HyperParameters": params})
    assert len(io.reads) == MAX_LOCATIONS and io.skipped_reads == 5


def test_odd_shapes_are_ignored_not_fatal():
    io = lineage_io_of({"InputDataConfig": "x", "CheckpointConfig": [], "HyperParameters": {"a": 3}})
    assert io.reads == () and io.writes == ()
