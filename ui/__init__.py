"""segscale's Streamlit app, by page: what every page shares and each page's sections.

``app.py`` and ``pages/*.py`` hold the layout only and call into this package:

* :mod:`ui.common`: the cached model, the pickers (checkpoint, merge, scale set, image), ``predict``,
  the session keys and text safety (``plain``, ``show_error``, ``show_notices``);
* :mod:`ui.widgets`: maps, colour bars and legends, tables, figures;
* one module per page's sections: :mod:`ui.main_view` (``app.py``), :mod:`ui.inspector`,
  :mod:`ui.comparison`, :mod:`ui.scale_diagnostics`, :mod:`ui.how_it_works`, :mod:`ui.checkpoints`.

Anything that needs no Streamlit lives in ``segscale/``, where plain tests reach it. Named ``ui``,
not ``app``, so that it does not shadow ``app.py``.
"""
