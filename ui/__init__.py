"""segscale's Streamlit app, by page: what every page shares and each page's sections.

``app.py`` and ``pages/*.py`` hold the layout only and call into this package:

* what every page shares, one concern a module: :mod:`ui.model_loading` (checkpoints to cached models),
  :mod:`ui.model_controls` (the sidebar: checkpoint, merge, scale set), :mod:`ui.image_sources` (gallery,
  upload, random sample) with :mod:`ui.photos` (the photo gallery) and :mod:`ui.chosen_image` (the image
  a page works on), :mod:`ui.prediction` (the cached ``predict``), :mod:`ui.session` (session keys,
  choices kept across pages), :mod:`ui.limits` (cache and upload bounds) and :mod:`ui.messages` (text
  safety: ``plain``, ``show_error``, ``show_notices``);
* :mod:`ui.widgets`: maps, colour bars and legends, tables, figures;
* one module per page's sections: :mod:`ui.main_view` (``pages/0_Main_view.py``), :mod:`ui.inspector`,
  :mod:`ui.comparison`, :mod:`ui.scale_diagnostics`, :mod:`ui.how_it_works`, :mod:`ui.checkpoints`.

Anything that needs no Streamlit lives in ``segscale/``, where plain tests reach it. Named ``ui``,
not ``app``, so that it does not shadow ``app.py``.
"""
