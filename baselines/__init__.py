"""Classical (model-driven) infrared small target detectors; NumPy/SciPy only."""
