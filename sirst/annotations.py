"""Ground-truth boxes from VOC XML files and from binary masks (OSCAR spec 1.2, 2.4).

Box convention everywhere: XYXY_ABS, float32, half-open pixel rectangles: columns x1 .. x2-1
and rows y1 .. y2-1, so ``x2 - x1`` is the target width in pixels.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Optional, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

from .image_io import DatasetFileError

CLASS_NAME = "Target"
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image, read from its header only."""
    if not os.path.isfile(path):
        raise DatasetFileError(path, "image file not found")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise DatasetFileError(path, f"not a readable image ({e})") from e


def parse_voc_xml(xml_path: str, case_insensitive_names: bool = False
                  ) -> Tuple[np.ndarray, Optional[Tuple[int, int]]]:
    """Boxes and size of a SIRST-V2 VOC annotation.

    Follows the reference loader: an object without ``<bndbox>`` (the placeholder of
    background images) is dropped; coordinates are ``int(float(text)) - 1``. Unlike the
    reference, which silently drops objects not named ``Target`` (turning a target image into
    a background one), any other class name is an error naming the file and the name;
    ``case_insensitive_names=True`` accepts e.g. ``target``.

    Returns:
        boxes: float32 (n, 4) XYXY_ABS, in file order; (0, 4) for background images.
        size: (width, height) from ``<size>``, or None when the XML has no ``<size>``.
    """
    if not os.path.isfile(xml_path):
        raise DatasetFileError(xml_path, "annotation file not found")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise DatasetFileError(xml_path, f"malformed XML ({e})") from e
    if root.tag != "annotation":
        raise DatasetFileError(xml_path, f"root element is <{root.tag}>, expected <annotation>")
    objects = root.findall("object")
    if not objects:
        raise DatasetFileError(xml_path, "no <object> element (SIRST-V2 XMLs have at least one; "
                                         "background images carry a placeholder object)")
    size = None
    size_el = root.find("size")
    if size_el is not None:
        try:
            size = (int(size_el.findtext("width")), int(size_el.findtext("height")))
        except (TypeError, ValueError) as e:
            raise DatasetFileError(xml_path, "<size> lacks an integer <width>/<height>") from e
    boxes = []
    for i, obj in enumerate(objects):
        name = (obj.findtext("name") or "").strip()
        if name != CLASS_NAME and not (case_insensitive_names
                                       and name.casefold() == CLASS_NAME.casefold()):
            hint = " (or load with case_insensitive_names=True)" if (
                name.casefold() == CLASS_NAME.casefold()) else ""
            raise DatasetFileError(xml_path, f"object {i}: class name {name!r} is not one of the "
                                             f"dataset's classes {[CLASS_NAME]}{hint}")
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        try:
            coords = [int(float(bnd.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (TypeError, ValueError) as e:
            raise DatasetFileError(
                xml_path, f"object {i}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from e
        boxes.append([c - 1 for c in coords])
    arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return arr, size


def check_boxes(boxes: np.ndarray, width: int, height: int, source: str) -> None:
    """Raise ``DatasetFileError`` for degenerate boxes or boxes outside the image."""
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        if not (x2 > x1 and y2 > y1):
            raise DatasetFileError(
                source, f"box {i} {[x1, y1, x2, y2]} is empty (needs x2 > x1, y2 > y1)")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise DatasetFileError(
                source, f"box {i} {[x1, y1, x2, y2]} lies outside the {width}x{height} image")


def mask_component_boxes(mask: np.ndarray) -> np.ndarray:
    """Boxes of the 8-connected components of a binary mask (spec 2.4, "seg2noco").

    Components are ordered like scikit-image's ``label``: by the raster position of each
    component's first pixel. Each box is (min_col, min_row, max_col + 1, max_row + 1), with no
    -1 shift (already half-open).

    Args:
        mask: (H, W) array, non-zero = target.
    Returns:
        float32 (n, 4) XYXY_ABS.
    """
    labels, n = ndimage.label(np.asarray(mask) != 0, structure=_EIGHT_CONNECTED)
    if n == 0:
        return np.zeros((0, 4), dtype=np.float32)
    slices = ndimage.find_objects(labels)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices],
                     dtype=np.float32)
    # scipy numbers components in raster order of their first pixel, as skimage does; make the
    # order explicit so it never depends on that implementation detail.
    first = ndimage.minimum(np.arange(labels.size).reshape(labels.shape), labels,
                            index=np.arange(1, n + 1))
    return boxes[np.argsort(first, kind="stable")]
