"""kpext_synth: the renderers and converters that write kpext's datasets. Part of the
repository, not of the installed kpext: training reads the files they write through
kpext's registered datasets (:mod:`kpext.data.builtin`, :mod:`kpext.data.faces`) and never
imports this package.

Its users reach it from the repository: the scripts beside it in ``datasets/`` (their folder
is on ``sys.path`` when they run), the tests (``pythonpath`` in ``pytest.ini``) and the
projects that render (``projects/Benchmarks/kpext_bench``,
``projects/RepCounter/make_synthetic_video.py``), which put ``datasets/`` on ``sys.path``.

* :mod:`kpext_synth.people`: multi-person images labelled with COCO's 17
  person keypoints (the built-in ``kpext_synth_*`` datasets of :mod:`kpext.data.builtin`);
  the generator entry (settings, writer). Its renderer, one concern per module:
  :mod:`~kpext_synth.people_config` (split settings, style names),
  :mod:`~kpext_synth.body` (3-D body model, random poses),
  :mod:`~kpext_synth.camera` (yaw turn, projection),
  :mod:`~kpext_synth.parts` (the drawn parts of a person),
  :mod:`~kpext_synth.colors`, :mod:`~kpext_synth.shapes` (palettes,
  outlines), :mod:`~kpext_synth.styles` (the styles people are drawn in),
  :mod:`~kpext_synth.painting` (the parts painted in their style),
  :mod:`~kpext_synth.background` (clutter),
  :mod:`~kpext_synth.scene` (one image: layout, labels, camera effects) and
  :mod:`~kpext_synth.preview` (one example per style).
* :mod:`kpext_synth.faces`: grey face crops labelled with Kaggle's 15 face
  points (written as a Kaggle CSV and converted by :mod:`kpext_synth.kaggle`) and
  iBUG's 68; the generator entry (settings, writer). Its renderer:
  :mod:`~kpext_synth.face_config` (split settings),
  :mod:`~kpext_synth.face_model` (face model, landmarks),
  :mod:`~kpext_synth.face_sampling` (random faces) and
  :mod:`~kpext_synth.face_painting` (drawing a face).
* :mod:`kpext_synth.kaggle`: Kaggle's facial-keypoints CSV read, checked and converted to
  COCO keypoint JSON (``datasets/kaggle_faces_to_coco.py``).
* :mod:`kpext_synth.render`: what the renderers share; :mod:`kpext_synth.generation`: what
  the writers share (settings errors, per-split settings, JSON written atomically).

Import the module you need; this file imports nothing.
"""
