"""Turn whatever a caller hands in (array, encoded bytes, a path) into an 8-bit image, or say why not."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MAX_PIXELS = 64_000_000  # beyond this a frame is refused rather than risk memory exhaustion
MIN_SIDE = 32

ImageInput = np.ndarray | bytes | bytearray | str | Path


@dataclass(frozen=True)
class LoadedImage:
    """`gray` is None exactly when `problem` says why the input cannot be used."""

    gray: np.ndarray | None
    problem: str = ""


@dataclass(frozen=True)
class LoadedColour:
    """`image` (BGR uint8) is None exactly when `problem` says why the input cannot be used."""

    image: np.ndarray | None
    problem: str = ""


def _decode(data: bytes | bytearray) -> np.ndarray | None:
    if not data:
        return None
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)


def _to_8bit(image: np.ndarray) -> np.ndarray | str:
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            return "image holds NaN or infinite values"
        peak = 1.0 if float(image.max(initial=0.0)) <= 1.0 else 255.0
        image = np.clip(image * (255.0 / peak), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        return f"unsupported pixel type {image.dtype}"
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)):
        return image
    return f"unsupported image shape {image.shape}"


def _to_gray8(image: np.ndarray) -> np.ndarray | str:
    converted = _to_8bit(image)
    if isinstance(converted, str):
        return converted
    image = converted
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return f"unsupported image shape {image.shape}"


def _to_bgr8(image: np.ndarray) -> np.ndarray | str:
    converted = _to_8bit(image)
    if isinstance(converted, str):
        return converted
    if converted.ndim == 2:
        return cv2.cvtColor(converted, cv2.COLOR_GRAY2BGR)
    if converted.shape[2] == 4:
        return cv2.cvtColor(converted, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(converted)


def load_gray(source: ImageInput, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Grayscale uint8 view of `source`; never raises for bad content."""
    return _load(source, max_pixels, _to_gray8)


def load_colour(source: ImageInput, max_pixels: int = MAX_PIXELS) -> LoadedColour:
    """BGR uint8 view of `source` (grey images repeated in three channels); never raises for bad content."""
    loaded = _load(source, max_pixels, _to_bgr8)
    return LoadedColour(loaded.gray, loaded.problem)


def _load(source: ImageInput, max_pixels: int, convert) -> LoadedImage:  # type: ignore[no-untyped-def]
    try:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                return LoadedImage(None, f"no such image file: {path}")
            if path.stat().st_size > max_pixels * 4:
                return LoadedImage(None, "image file too large")
            source = path.read_bytes()
        if isinstance(source, (bytes, bytearray)):
            decoded = _decode(source)
            if decoded is None:
                return LoadedImage(None, "empty or corrupt image data")
            source = decoded
        if not isinstance(source, np.ndarray):
            return LoadedImage(None, f"not an image: {type(source).__name__}")
        if source.size == 0 or source.ndim < 2:
            return LoadedImage(None, "empty image")
        height, width = source.shape[:2]
        if height * width > max_pixels:
            return LoadedImage(None, f"image too large: {width}x{height} exceeds {max_pixels} pixels")
        if min(height, width) < MIN_SIDE:
            return LoadedImage(None, f"image too small: {width}x{height}")
        gray = convert(source)
    except (cv2.error, ValueError, OSError, MemoryError) as error:
        return LoadedImage(None, f"cannot read image: {error}")
    if isinstance(gray, str):
        return LoadedImage(None, gray)
    return LoadedImage(gray)
