"""Camera evidence for Custodian: shred particle size, media labels, people at portals.

Pure functions from image to typed result:

- `vision.particles.analyse(image, level, TraySetup(board))` -> ParticleReport ('pass' | 'fail' |
  'cannot_verify'), each particle with its uncertainty; the tray modelled by `vision.tray`, scale and
  perspective from a board of ArUco markers (`vision.calibration`), particles and their splits in
  `vision.segmentation`, levels as data (`vision.shred_levels`).
- `vision.labels`: render_label / render_label_pdf (a QR code and a DataMatrix), read_label (every code
  with its place; zxing-cpp, then OpenCV), compare (the expected item's code, never a neighbour's).
- `vision.people`: the PeopleSource / HeadCount interface and the camera counter (PeopleCounter).
- `vision.synthetic`: generated trays, label photos and portal scenes with their ground truth (the
  tests also use `tests/vision/independent_corpus.py`, written apart from it).

Bad input never raises out of these entry points: it comes back as a result that says why.
"""
