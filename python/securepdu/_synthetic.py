"""Synthetic DICOM studies for the demo, the tests and the benchmarks.

Everything here is made up: the patient is "SECUREPDU^SYNTHETIC", the pixel data is
pseudo-random noise (so a mix-up between two objects can never go unnoticed), and
each object is a valid Part 10 file in explicit VR little endian with the SOP class
of its modality. Sizes are exact and predictable, so a caller can ask for "about
30 MB" and get it.

``make_large`` writes one big multi-frame object by appending the pixel data to the
file in chunks: memory stays at one chunk whatever the size.
"""

from __future__ import annotations

import datetime
import io
import os
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = [
    "MODALITIES",
    "Modality",
    "dataset_bytes",
    "make_dataset",
    "make_large",
    "make_study",
    "same_dataset",
    "dataset_digest",
    "iter_files",
    "split_part10",
]

#: Multi-frame Grayscale Word Secondary Capture Image Storage: a simple multi-frame IOD.
MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
_IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1361.1"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Modality:
    """How a synthetic object of one modality looks."""

    name: str
    sop_class_uid: str
    rows: int
    cols: int
    bits: int  # bits allocated per sample: 8 or 16
    samples: int  # 1 (MONOCHROME2) or 3 (RGB)
    description: str

    @property
    def frame_bytes(self) -> int:
        """Bytes of pixel data in one frame at the default size."""
        return self.rows * self.cols * self.samples * (self.bits // 8)


#: The modalities ``make_study`` knows, at their default (typical) sizes.
MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality("CT", "1.2.840.10008.5.1.4.1.1.2", 512, 512, 16, 1, "CT Image Storage"),
        Modality("MR", "1.2.840.10008.5.1.4.1.1.4", 256, 256, 16, 1, "MR Image Storage"),
        Modality("CR", "1.2.840.10008.5.1.4.1.1.1", 2048, 1664, 16, 1, "Computed Radiography Image Storage"),
        Modality("US", "1.2.840.10008.5.1.4.1.1.6.1", 480, 640, 8, 3, "Ultrasound Image Storage"),
        Modality(
            "MG", "1.2.840.10008.5.1.4.1.1.1.2", 2294, 1914, 16, 1, "Digital Mammography X-Ray Image Storage"
        ),
    )
}


def _noise(n: int, rng: random.Random) -> bytes:
    return rng.randbytes(n)


def _study_attrs(study: Dataset | None) -> Dataset:
    """Patient and study attributes shared by every object of one study."""
    if study is not None:
        return study
    now = datetime.datetime.now()
    s = Dataset()
    s.PatientName = "SECUREPDU^SYNTHETIC"
    s.PatientID = "SPDU-" + generate_uid()[-8:]
    s.PatientBirthDate = "19700101"
    s.PatientSex = "O"
    s.StudyInstanceUID = generate_uid()
    s.StudyDate = now.strftime("%Y%m%d")
    s.StudyTime = now.strftime("%H%M%S")
    s.StudyID = "1"
    s.AccessionNumber = "SPDU" + now.strftime("%H%M%S")
    s.ReferringPhysicianName = ""
    s.StudyDescription = "securepdu synthetic study"
    return s


def make_dataset(
    modality: str,
    rows: int | None = None,
    cols: int | None = None,
    *,
    frames: int = 1,
    study: Dataset | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    instance_number: int = 1,
    sop_instance_uid: str | None = None,
    seed: int | None = None,
    pixel_data: bool = True,
) -> Dataset:
    """One synthetic object of ``modality`` (a key of :data:`MODALITIES`), with file meta.

    ``rows``/``cols`` default to the modality's typical size. ``study`` (from a previous
    call's dataset, or None for a new study) supplies the patient and study attributes.
    The pixel data is seeded noise (``seed`` makes it reproducible). With
    ``pixel_data=False`` the dataset stops before (7FE0,0010), for callers that append it.
    """
    m = MODALITIES[modality.upper()]
    rows = m.rows if rows is None else rows
    cols = m.cols if cols is None else cols
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise ValueError("rows, cols and frames must be positive")
    rng = random.Random(seed)
    sop_class = MULTIFRAME_WORD_SC if frames > 1 else m.sop_class_uid
    sop_instance = sop_instance_uid or generate_uid()

    ds = Dataset()
    ds.update(_study_attrs(study))
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.Modality = m.name if frames == 1 else "OT"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"synthetic {m.name}"
    ds.InstanceNumber = instance_number
    ds.Manufacturer = "securepdu"
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"] if m.name == "CT" else ["ORIGINAL", "PRIMARY"]
    if m.name in ("CT", "MR"):
        ds.FrameOfReferenceUID = generate_uid()
        ds.ImagePositionPatient = [0, 0, float(instance_number)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.SliceThickness = 1.0
    if m.name == "CT":
        ds.KVP = 120
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
    if m.name == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = 10
        ds.RepetitionTime = 500
        ds.MagneticFieldStrength = 1.5
    if m.name in ("CR", "MG"):
        ds.BodyPartExamined = "CHEST" if m.name == "CR" else "BREAST"
        ds.ViewPosition = "PA" if m.name == "CR" else "CC"
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.ConversionType = "WSD"
    ds.SamplesPerPixel = m.samples
    ds.PhotometricInterpretation = "RGB" if m.samples == 3 else "MONOCHROME2"
    if m.samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = m.bits
    ds.BitsStored = 12 if m.bits == 16 and frames == 1 else m.bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if pixel_data:
        n = rows * cols * m.samples * (m.bits // 8) * frames
        ds.PixelData = _noise(n + (n & 1), rng)
        # OW for 16-bit words; OB for 8-bit samples (PS3.5 §8.2).
        ds["PixelData"].VR = "OW" if m.bits == 16 else "OB"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = "SECUREPDU_SYN"
    ds.file_meta = meta
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_study(
    out_dir: str | os.PathLike[str],
    *,
    total_mb: float = 30.0,
    modalities: Sequence[str] = ("CT", "MR", "CR"),
    seed: int | None = None,
) -> list[Path]:
    """Writes one synthetic study of about ``total_mb`` MB (10^6 bytes) into ``out_dir``.

    The budget is split evenly between ``modalities`` (one series each, at least one
    object each); objects have their modality's typical size. Files go to
    ``out_dir/<MODALITY>/IM00001.dcm`` ...; returns their paths in sending order.
    """
    if not modalities:
        raise ValueError("at least one modality is needed")
    out = Path(out_dir)
    rng = random.Random(seed)
    study = _study_attrs(None)
    share = total_mb * 1_000_000 / len(modalities)
    paths: list[Path] = []
    for series_number, name in enumerate(modalities, start=1):
        m = MODALITIES[name.upper()]
        count = max(1, round(share / m.frame_bytes))
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(
                m.name,
                study=study,
                series_uid=series_uid,
                series_number=series_number,
                instance_number=i,
                seed=rng.getrandbits(64),
            )
            paths.append(_save(ds, out / m.name / f"IM{i:05d}.dcm"))
    return paths


def make_large(path: str | os.PathLike[str], size_mb: float, *, seed: int | None = None) -> Path:
    """Writes one multi-frame object of at least ``size_mb`` MB (10^6 bytes) to ``path``.

    512x512 16-bit frames (Multi-frame Grayscale Word Secondary Capture). The header is
    written by pydicom; the pixel data element is appended by hand, 4 MiB at a time, so
    memory use does not grow with the size. (7FE0,0010) is the last element of the
    dataset, so appending it keeps the file valid.
    """
    out = Path(path)
    frame = 512 * 512 * 2
    frames = max(1, -(-int(size_mb * 1_000_000) // frame))
    ds = make_dataset("CT", 512, 512, frames=frames, pixel_data=False)
    _save(ds, out)
    length = frames * frame  # even
    rng = random.Random(seed)
    with open(out, "ab") as f:
        # Explicit VR LE, OW: tag, VR, 2 reserved bytes, 32-bit length (PS3.5 §7.1.2).
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        left = length
        while left:
            n = min(_CHUNK, left)
            f.write(_noise(n, rng))
            left -= n
    return out


def split_part10(path: str | os.PathLike[str]) -> tuple[FileMetaDataset, int]:
    """The file meta of a Part 10 file and the offset where its dataset starts.

    The meta (group 0002) is always explicit VR little endian (PS3.10 §7.1); we walk
    its elements by hand to find where it ends, then let pydicom decode them.
    """
    with open(path, "rb") as f:
        head = f.read(132)
        if len(head) != 132 or head[128:] != b"DICM":
            raise ValueError(f"{path}: not a DICOM Part 10 file (no DICM prefix)")
        pos = 132
        while True:
            f.seek(pos)
            tag_vr = f.read(8)
            if len(tag_vr) < 8:
                break
            group, _elem, vr = struct.unpack("<HH2s", tag_vr[:6])
            if group != 0x0002:
                break
            if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
                extra = f.read(4)
                if len(extra) < 4:
                    raise ValueError(f"{path}: truncated file meta")
                pos += 12 + struct.unpack("<I", extra)[0]
            else:
                pos += 8 + struct.unpack("<H", tag_vr[6:8])[0]
        f.seek(132)
        raw = f.read(pos - 132)
    meta = pydicom.dcmread(
        io.BytesIO(b"\0" * 128 + b"DICM" + raw), force=True, stop_before_pixels=True
    ).file_meta
    return meta, pos


def dataset_bytes(path: str | os.PathLike[str]) -> bytes:
    """The encoded dataset of a Part 10 file: everything after the file meta."""
    _, offset = split_part10(path)
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read()


def dataset_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the encoded dataset of a Part 10 file, read in chunks (for big files)."""
    import hashlib

    _, offset = split_part10(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _same_elements(da: Dataset, db: Dataset) -> bool:
    # Sorted: a file holds its elements in tag order, a Dataset built in memory
    # in the order they were added.
    ta = sorted(t for t in da.keys() if t.group != 0x0002)
    tb = sorted(t for t in db.keys() if t.group != 0x0002)
    if ta != tb:
        return False
    for tag in ta:
        ea, eb = da[tag], db[tag]
        if ea.VR == "SQ" or eb.VR == "SQ":
            if ea.VR != eb.VR or len(ea.value) != len(eb.value):
                return False
            if not all(_same_elements(x, y) for x, y in zip(ea.value, eb.value)):
                return False
            continue
        # Implicit VR files carry no VR: pixel data read back from one is "OW" even when
        # it was sent as OB (PS3.5 §8.2 allows either); the bytes are what matter.
        vr_ok = ea.VR == eb.VR or {ea.VR, eb.VR} <= {"OB", "OW", "OB or OW"}
        if not vr_ok or ea.value != eb.value:
            return False
    return True


def same_dataset(a: str | os.PathLike[str] | Dataset, b: str | os.PathLike[str] | Dataset) -> bool:
    """Whether two objects carry the same dataset (file meta ignored).

    Two Part 10 files in the same transfer syntax are compared byte for byte after their
    meta; anything else is decoded with pydicom and compared element by element (values
    and VRs; OB and OW count as one, as implicit VR cannot tell them apart).
    """
    if not isinstance(a, Dataset) and not isinstance(b, Dataset):
        ma, _ = split_part10(a)
        mb, _ = split_part10(b)
        if ma.TransferSyntaxUID == mb.TransferSyntaxUID:
            return dataset_digest(a) == dataset_digest(b)
    da = a if isinstance(a, Dataset) else pydicom.dcmread(a)
    db = b if isinstance(b, Dataset) else pydicom.dcmread(b)
    return _same_elements(da, db)


def iter_files(paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True) -> list[Path]:
    """Expands files and folders into a sorted list of files (folders walked if ``recursive``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = p.rglob("*") if recursive else p.glob("*")
            out.extend(sorted(f for f in found if f.is_file()))
        else:
            out.append(p)
    return out
