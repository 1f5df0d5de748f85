"""Camera evidence for Custodian: shred particle size, media labels, people at portals.

Pure functions from image to typed result, as follows:

- `vision.particles.analyse(image, level)` -> ParticleReport ('pass' | 'fail' | 'cannot_verify');
  scale and perspective from an ArUco marker (`vision.calibration`), levels as data (`vision.shred_levels`).
- `vision.labels`: render_label / render_label_pdf, read_label (zxing-cpp, then OpenCV), compare.
- `vision.people`: PeopleCounter (per-frame count and crossings) and count_crossings.
- `vision.synthetic`: generated trays, label photos and portal scenes with their ground truth.

Bad input never raises out of these entry points: it comes back as a result that says why.
"""
