# Sphinx configuration of the HTML report (python -m lib.report builds it; lib/report/site.py stages the sources).
# The pages are rendered from report/templates/ with every number read from figures/; the notebook pages are the
# executed notebooks of results/, shown as run_all.sh left them: MyST-NB never executes them again.
project = "Breast cell segmentation under extreme data constraints: a reproduction"
author = "the reproduction's authors (CITATION.cff)"
extensions = ["myst_nb"]
exclude_patterns = ["figures/**", "**/*.partial", "_build"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True
html_theme = "sphinx_book_theme"
html_title = "Breast cell segmentation: a reproduction"
html_theme_options = {"show_toc_level": 2, "use_download_button": False}
html_last_updated_fmt = None
