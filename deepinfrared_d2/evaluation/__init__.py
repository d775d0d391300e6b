"""NoCo ground-truth maps and the mNoCoAP evaluator."""
