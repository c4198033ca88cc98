"""bench/reproduce.py's modules: the command line (options, built from the plugin's parameter
spec), the scene (band centres, reading the cube and the ground truth, the GeoTIFF the
stages read), the run (the stages, with tqdm progress bars) and the report (scores, table,
JSON). Run it as bench/reproduce.py."""
