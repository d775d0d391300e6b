"""SIRST-V2 and IRSTD dataset catalog, image loading, mappers and augmentations."""
