"""Accepted masks without specks and pinholes; brush strokes that keep a polygon's vertices."""

from __future__ import annotations

import json
import math

import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.brush import apply_stroke
from scubasteve.core.geometry import Polygon, mask_to_polygons, polygons_to_mask
from scubasteve.core.settings import load_settings, settings_from_dict


def _bird_with_specks() -> np.ndarray:
    mask = np.zeros((100, 120), dtype=bool)
    mask[20:70, 20:90] = True  # the bird
    mask[40:42, 50:52] = False  # a 4 px pinhole
    mask[45:55, 60:70] = False  # a real hole (100 px)
    mask[5, 5] = True  # 1 px speck
    mask[95:97, 40] = True  # 2 px speck
    mask[80:90, 100:110] = True  # a real second part (100 px)
    return mask


def test_specks_are_dropped_and_pinholes_filled_by_area() -> None:
    mask = _bird_with_specks()
    plain = mask_to_polygons(mask, 1.0)
    assert len(plain) == 4 and len(plain[0].holes) == 2
    clean = mask_to_polygons(mask, 1.0, min_island=10)
    assert len(clean) == 2, "the two specks went, the real second part stayed"
    assert len(clean[0].holes) == 1, "the pinhole was filled, the real hole kept"
    assert abs(clean[0].to_shapely().area - (50 * 70 - 100)) < 1e-6


def test_a_tiny_object_is_kept_even_below_the_island_area() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[4:6, 4:6] = True
    assert len(mask_to_polygons(mask, 1.0, min_island=10)) == 1


def test_the_patch_passes_the_island_area_on() -> None:
    patch = MaskPatch.from_full(_bird_with_specks())
    assert len(patch.to_polygons(1.0, 10)) == 2
    assert len(patch.to_polygons(1.0)) == 4


def test_brush_stroke_keeps_the_polygon_vertices_it_did_not_touch() -> None:
    angles = np.linspace(0, 2 * math.pi, 18, endpoint=False)
    ring = np.stack([200 + 150 * np.cos(angles), 200 + 120 * np.sin(angles)], axis=1)
    poly = Polygon(ring)
    stroke = np.zeros((60, 60), dtype=np.uint8)
    stroke[20:40, 20:40] = 1  # a square stroke straddling the right-most vertex (350, 200)
    out = apply_stroke((poly,), stroke, (320.0, 170.0), 1.0)
    assert len(out) == 1
    assert len(out[0].exterior) < 40, f"{len(out[0].exterior)} points"
    kept = {tuple(np.round(p, 6)) for p in out[0].exterior}
    assert sum(tuple(np.round(p, 6)) in kept for p in ring) >= 15
    # the stroke was added: its pixels are inside now
    assert polygons_to_mask(list(out), 400, 400)[205, 355]
    erased = apply_stroke(out, stroke, (320.0, 170.0), 1.0, erase=True)
    assert not polygons_to_mask(list(erased), 400, 400)[205, 345]


def test_settings_for_islands_and_instance_colours_are_checked(tmp_path) -> None:
    problems: list[str] = []
    s = settings_from_dict(
        {"min_island_area": -3, "instance_colors": "yes", "recent_folders": ["/a", 3]}, problems
    )
    assert (s.min_island_area, s.instance_colors, s.recent_folders) == (10.0, False, [])
    assert len(problems) == 3 and "min_island_area" in problems[0]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"min_island_area": 0, "instance_colors": True}), encoding="utf-8")
    s = load_settings(path)
    assert (s.min_island_area, s.instance_colors) == (0.0, True)
