"""structax.smooth: spline bases, penalties, identifiability constraints and design blocks.

.. currentmodule:: structax.smooth

Bases and penalties
    pspline_knots, bspline_basis, difference_penalty         P-splines (mgcv ``bs="ps"``)
    cyclic_knots, cyclic_bspline_basis, cyclic_difference_penalty   cyclic P-splines (``bs="cc"``)
    row_tensor, tensor_penalties                             tensor products (``te``/``ti``)
Terms
    Term, build_terms, sum_to_zero_basis                     constructed terms with predict-time state
Blocks
    Block, crossprod                                         indexed design columns, O(n) memory
"""
from ._bases import (bspline_basis, cyclic_bspline_basis, cyclic_difference_penalty, cyclic_knots,
                     difference_penalty, pspline_knots, row_tensor, tensor_penalties)
from ._block import Block, crossprod
from ._terms import Term, build_terms, sum_to_zero_basis

__all__ = ["pspline_knots", "bspline_basis", "difference_penalty", "cyclic_knots", "cyclic_bspline_basis",
           "cyclic_difference_penalty", "row_tensor", "tensor_penalties", "Block", "crossprod", "Term",
           "build_terms", "sum_to_zero_basis"]
