"""The SIRST file layer shared by the deep and the classical halves (NumPy/OpenCV/SciPy only).

- :mod:`sirst.image_io`: image and mask decoding; ``DatasetFileError`` names the file;
- :mod:`sirst.annotations`: VOC boxes and mask components (XYXY_ABS pixels);
- :mod:`sirst.dataset`: dataset root, split files, SIRST-V2 / mask-only dataset dicts;
- :mod:`sirst.noco_map`: the normalized-contrast ground-truth map;
- :mod:`sirst.results`: detection records, the canonical results file, its loader;
- :mod:`sirst.cli`: argument checks of the command-line tools (one-line errors, exit 2).

Importing it (or any of its modules) imports neither torch nor Detectron2.
"""
