"""What a bento installs: the champion's own MLflow requirements plus what the service imports, as exact pins."""

from __future__ import annotations

from typing import Any

# What the service itself imports, whichever champion it serves (serving/, core/, settings/ and models/,
# whose families import scikit-learn and XGBoost): the registry client (and its PostgreSQL driver in
# production), the prediction log (Parquet through fsspec, s3fs for an S3 lake), the request schema. What
# the champion needs on top (torch, onnxruntime, skops or cloudpickle ...) comes from its own MLflow
# requirements.txt, which training derives from the model itself.
SERVING_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "xgboost",
    "skops",
    "pandas",
    "numpy",
    "pyarrow",
    "fsspec",
    "s3fs",
    "pydantic",
    "PyYAML",
    "threadpoolctl",
    # POST /predict_image: images decoded as landing decodes them (core/images.py), multipart uploads.
    "pillow",
    "python-multipart",
    "psycopg2-binary",
    # The service compiles its champion into one ONNX graph (models/compile*.py) and runs it.
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "onnxmltools",
)
# A "+cpu" torch comes from PyTorch's own index; PyPI's torch of the same version is the multi-GB CUDA build.
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def bento_requirements(model_requirements: list[str]) -> dict[str, Any]:
    """The bento's ``python`` options: the champion's requirements.txt lines plus the serving packages, one
    exact pin per distribution (an unpinned or ranged line gets this environment's version); a model
    pinning another version than the service runs with is an error naming both."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins: dict[str, tuple[str, Version, str]] = {}
    lines = [line.split("#", 1)[0].strip() for line in model_requirements]
    wanted = [(line, "the champion") for line in lines if line and not line.startswith("-")]
    wanted += [(f"{name}=={version(name)}", "the service") for name in SERVING_PACKAGES]
    for line, whose in wanted:
        requirement = Requirement(line)
        exact = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        if len(exact) != 1:
            # A range (or nothing): the version the service runs with, when the range admits it.
            try:
                installed = version(requirement.name)
            except PackageNotFoundError:
                raise ValueError(f"{whose} requires {line!r}, which this environment lacks") from None
            if not requirement.specifier.contains(installed, prereleases=True):
                raise ValueError(f"{whose} requires {line!r}, this environment has {installed}")
            exact = [installed]
        key, pinned = canonicalize_name(requirement.name), Version(exact[0])
        if key in pins and pins[key][1].public != pinned.public:
            raise ValueError(
                f"{pins[key][2]} requires {requirement.name}=={pins[key][1]} but {whose} "
                f"requires {requirement.name}=={pinned}: train the champion again in this environment"
            )
        pins.setdefault(key, (requirement.name, pinned, whose))
    packages = [f"{name}=={pinned.public}" for name, pinned, _ in sorted(pins.values())]
    cpu_torch = "torch" in pins and pins["torch"][1].local == "cpu"
    return {
        "packages": packages,
        # Exact versions for a container; locking would resolve against PyPI, which may be offline.
        "lock_packages": False,
        **({"extra_index_url": [PYTORCH_CPU_INDEX]} if cpu_torch else {}),
    }
