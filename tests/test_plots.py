"""The book's fixed colours: one per registered method, none shared."""

from mmlib.methods import available_methods
from mmlib.plots import METHOD_COLORS, method_palette


def test_every_registered_method_has_its_own_fixed_colour():
    methods = available_methods()
    assert set(methods) <= set(METHOD_COLORS), f"no colour for {sorted(set(methods) - set(METHOD_COLORS))}"
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)
    assert method_palette(methods) == {m: METHOD_COLORS[m] for m in methods}
