from __future__ import annotations
__all__ = ["match_colors"]
def match_colors(*a, **k):
    raise NotImplementedError
