"""OSCAR: one-stage cascade refinement network (arXiv 2212.08472) for Detectron2."""
