"""kpext's synthetic datasets: image renderers and the writers of their splits.

* :mod:`kpext.data.synthetic.people`: multi-person images labelled with COCO's 17
  person keypoints (the built-in ``kpext_synth_*`` datasets of :mod:`kpext.data.builtin`);
  the generator entry (settings, writer). Its renderer, one concern per module:
  :mod:`~kpext.data.synthetic.people_config` (split settings, style names),
  :mod:`~kpext.data.synthetic.body` (3-D body model, random poses),
  :mod:`~kpext.data.synthetic.camera` (yaw turn, projection),
  :mod:`~kpext.data.synthetic.parts` (the drawn parts of a person),
  :mod:`~kpext.data.synthetic.colors`, :mod:`~kpext.data.synthetic.shapes` (palettes,
  outlines), :mod:`~kpext.data.synthetic.styles` (the styles people are drawn in),
  :mod:`~kpext.data.synthetic.painting` (the parts painted in their style),
  :mod:`~kpext.data.synthetic.background` (clutter) and
  :mod:`~kpext.data.synthetic.scene` (one image: layout, labels, camera effects).
* :mod:`kpext.data.synthetic.faces`: grey face crops labelled with Kaggle's 15 face
  points (written as a Kaggle CSV and converted by :mod:`kpext.data.faces`) and
  iBUG's 68; the generator entry (settings, writer). Its renderer:
  :mod:`~kpext.data.synthetic.face_config` (split settings),
  :mod:`~kpext.data.synthetic.face_model` (face model, landmarks),
  :mod:`~kpext.data.synthetic.face_sampling` (random faces) and
  :mod:`~kpext.data.synthetic.face_painting` (drawing a face).
* :mod:`kpext.data.synthetic.render`: what the renderers share.

Loading and registering datasets does not need this package: the loaders
(:mod:`kpext.data.coco_keypoints`, :mod:`kpext.data.builtin`,
:mod:`kpext.data.faces`) never import it. Import the module you need.
"""
