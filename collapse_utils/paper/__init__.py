"""The paper's figures and claims on top of the loop: the figure registry (figures, figure_notes), the series
and plots (analysis, drawing, plotting), the commands `figures` and `bundle` (batch), results bundles (results),
`sweep` (sweep), `claims` (claims), `demo` (demo) and the gallery (gallery).

Entry points: :func:`collapse_utils.paper.figures.figure_runs`, :func:`collapse_utils.paper.claims.check_claims`,
:func:`collapse_utils.paper.demo.run_demo`.
"""
