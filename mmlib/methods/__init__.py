"""Training methods, one module each; ``build_method("ours", ...)`` by name."""

from mmlib.methods.base import (Method, available_methods, build_options, display_name, method_class, parse_methods,
                                register_method)
from mmlib.methods import concat, crmt, late_fusion, lfm, mla, ogm, ours, sum  # noqa: F401  (registers the methods)
from mmlib.methods import joint, mmin, qmf, sum_calibrated, tate  # noqa: F401  (issue 17: Table 3, 4, decision layer)

__all__ = ["Method", "available_methods", "build_options", "display_name", "method_class", "parse_methods",
           "register_method"]
