"""The data sets, generated with pydicom by securepdu's synthetic module and cached in
the work folder (an index written last marks a complete set), and the check that an
SCP received all of one, byte for byte on a sample."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MB = 1_000_000
MANIFEST = "securepdu-manifest.jsonl"


@dataclass(frozen=True)
class Spec:
    """How to make one data set: ``count`` objects of a modality at rows x cols, or
    (modality "large") one multi-frame object of ``large_mb`` MB."""

    name: str
    modality: str
    count: int = 1
    rows: int | None = None
    cols: int | None = None
    large_mb: float = 0.0

    @property
    def key(self) -> str:
        """Folder name in the cache: changes whenever the content would."""
        if self.modality == "large":
            return f"large-{self.large_mb:g}MB"
        return f"{self.name}-{self.count}x{self.rows or 0}x{self.cols or 0}"


@dataclass(frozen=True)
class DataSet:
    """Files ready to send, in order, with their SOP Instance UIDs."""

    name: str
    files: list[Path]
    uids: list[str]

    @property
    def nbytes(self) -> int:
        """Total file size (preamble and meta included)."""
        return sum(f.stat().st_size for f in self.files)

    def describe(self) -> str:
        """E.g. "CT 64 x 0.53 MB"."""
        n = len(self.files)
        return f"{self.name} {n} x {self.nbytes / n / MB:.2f} MB" if n > 1 else f"{self.name} 1 x {self.nbytes / MB:.1f} MB"


def specs(*, ct: int, mr: int, cr: int, mg: int, large_mb: float) -> list[Spec]:
    """The suite's data sets; a count of 0 leaves one out. CR about 10 MB and MG about
    40 MB per view; CT 0.5 MB and MR 0.13 MB per object at their typical sizes."""
    all_specs = [
        Spec("CR", "CR", cr, 2560, 2048),
        Spec("CT", "CT", ct, 512, 512),
        Spec("MR", "MR", mr, 256, 256),
        Spec("MG", "MG", mg, 4096, 4880),
        Spec("large", "large", 1 if large_mb > 0 else 0, large_mb=large_mb),
    ]
    return [s for s in all_specs if s.count > 0]


def _generate(spec: Spec, folder: Path) -> list[Path]:
    from pydicom.uid import generate_uid

    from securepdu import _synthetic

    if spec.modality == "large":
        return [_synthetic.make_large(folder / "LARGE.dcm", spec.large_mb, seed=1)]
    study = None
    series = str(generate_uid())
    files = []
    for i in range(1, spec.count + 1):
        ds = _synthetic.make_dataset(spec.modality, spec.rows, spec.cols, study=study, series_uid=series,
                                     instance_number=i, seed=i)
        study = study or ds
        path = folder / f"{spec.modality}{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def load(spec: Spec, cache: Path) -> DataSet:
    """The data set from the cache, generated first when missing or incomplete."""
    folder = cache / spec.key
    index = folder / "index.json"
    if not index.exists():
        from securepdu import _synthetic

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        files = _generate(spec, folder)
        uids = [str(_synthetic.split_part10(f)[0].MediaStorageSOPInstanceUID) for f in files]
        index.write_text(json.dumps({"files": [f.name for f in files], "uids": uids}))
        print(f"  generated {spec.key} in {time.perf_counter() - t0:.1f} s", flush=True)
    meta = json.loads(index.read_text())
    return DataSet(spec.name, [folder / n for n in meta["files"]], meta["uids"])


def received(out: Path) -> list[Path]:
    """Objects an SCP wrote: every file but hidden ones and securepdu's manifest."""
    return [f for f in out.iterdir() if f.is_file() and not f.name.startswith(".") and f.name != MANIFEST]


def verify(out: Path, data: DataSet, files: list[Path], *, sample: bool) -> None:
    """Raises unless every one of ``files`` (a subset of ``data``) arrived; with
    ``sample``, also compares the first and last object's data set byte for byte (every
    SCP names its files after the SOP Instance UID, dcmtk with a modality prefix)."""
    from securepdu import _synthetic

    got = received(out)
    if len(got) != len(files):
        raise RuntimeError(f"{len(got)} of {len(files)} objects stored")
    if not sample:
        return
    uid_of = dict(zip(data.files, data.uids))
    for sent in {files[0], files[-1]}:
        uid = uid_of[sent]
        match = [f for f in got if f.name.removesuffix(".dcm").endswith(uid)]
        if len(match) != 1 or _synthetic.dataset_digest(match[0]) != _synthetic.dataset_digest(sent):
            raise RuntimeError(f"{sent.name}: the received object differs from the one sent")
