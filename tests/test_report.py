"""Colour composites, evaluation plots and the static HTML report, checked in headless chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.catalog import make_catalog_table, write_catalog
from pipeline.catalog.columns import CatalogLayout
from pipeline.evaluation import evaluate, format_metric, read_metrics, write_metrics
from pipeline.evaluation.composites import (
    INVALID_RGB,
    channel_bands,
    make_composite,
    normalise_band,
    resample,
)
from pipeline.evaluation.plots import make_evaluation_plots
from pipeline.evaluation.report import build_report, gallery_items, render_gallery_pngs, select_top
from pipeline.flags import Flag
from pipeline.models import OutputSpec
from pipeline.models.outputs import DEFAULT_SCORE
from schemas.catalog import OOD_SCORE_COLUMN, Provenance, extra_column_specs
from schemas.layout import Layout, available_layouts, load_layout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def simulate_object(layout: Layout, rng: np.random.Generator, *, lens: bool) -> dict[str, np.ndarray]:
    """A red elliptical galaxy, with a blue arc for lenses, in every band; flux-like 1e-11 units."""
    images = {}
    for group, bands in layout.groups.items():
        ny, nx = layout.group_shape(group)
        scale = layout.group_pixel_scale(group)
        y, x = (np.mgrid[:ny, :nx] - (np.array([ny, nx])[:, None, None] - 1) / 2) * scale
        stack = []
        for name in bands:
            redness = ((layout.band(name).wavelength_nm or 700.0) - 600.0) / 1200.0
            galaxy = (0.3 + redness) * np.exp(-np.hypot(x, 1.3 * y) / 0.6)
            arc = (1.2 - redness) * 0.5 * np.exp(-((np.hypot(x, y) - 1.5) ** 2) / 0.045)
            arc *= np.cos(np.arctan2(y, x) - 1) > 0.2
            image = galaxy + (arc if lens else 0.0)
            stack.append((image * scale**2 / 0.01 + rng.normal(0, 0.02, (ny, nx))) * 1e-11)
        images[group] = np.asarray(stack, dtype=np.float32)
    return images


# ---------------------------------------------------------------- composites


@pytest.mark.parametrize("name", available_layouts())
def test_composite_of_every_shipped_layout(name: str) -> None:
    layout = load_layout(name)
    rng = np.random.default_rng(0)
    rgb = make_composite(simulate_object(layout, rng, lens=True), layout)
    finest = min(layout.groups, key=layout.group_pixel_scale)
    assert rgb.shape == (*layout.group_shape(finest), 3)
    assert rgb.dtype == np.uint8
    assert rgb.max() > 200
    assert np.median(rgb) < 40


def test_channel_bands_by_wavelength() -> None:
    assert channel_bands(load_layout("euclid-sglc2")) == (("H",), ("Y", "J"), ("VIS",))
    assert channel_bands(load_layout("sglc1-ground")) == (("I",), ("G", "R"), ("U",))
    assert channel_bands(load_layout("sglc1-space")) == (("VIS",), ("VIS",), ("VIS",))
    assert channel_bands(load_layout("sglc1-ground"), present={"R", "I"}) == (("I",), ("R", "I"), ("R",))
    assert channel_bands(load_layout("sglc1-ground"), present=set()) == (("I",), ("G", "R"), ("U",))


def test_a_band_without_pixels_leaves_no_channel_black() -> None:
    """New-user trial: the composite's red channel was H alone, so an object without its H file
    (or a layout's extra band that no file fills) showed no red at all; the other bands fill it."""
    layout = load_layout("euclid-sglc2")
    images = simulate_object(layout, np.random.default_rng(3), lens=True)
    images["nir"][2] = np.nan  # no H
    rgb = make_composite(images, layout)
    assert rgb[..., 0].max() > 200 and rgb[..., 1].max() > 200 and rgb[..., 2].max() > 200
    without_h = {"vis": images["vis"], "nir": images["nir"][:2]}  # as the layout without H shows it
    np.testing.assert_array_equal(rgb, make_composite(without_h, _without_band(layout, "H")))
    # an H band with a few finite rows (a masked or cut-off file) colours nothing either (trial)
    images["nir"][2, :5] = simulate_object(layout, np.random.default_rng(3), lens=True)["nir"][2, :5]
    np.testing.assert_array_equal(make_composite(images, layout), rgb)


def test_a_hole_in_one_band_is_the_invalid_colour_in_the_composite_not_the_other_bands_colour() -> None:
    """Trial: a 6x6 NaN core in VIS showed as a bright yellow disc (H and Y+J alone there); later
    trial: black, it looked like sky."""
    layout = load_layout("euclid-sglc2")
    images = simulate_object(layout, np.random.default_rng(3), lens=True)
    whole = make_composite(images, layout)
    images["vis"][0, 97:103, 97:103] = np.nan
    rgb = make_composite(images, layout)
    hole = rgb[200 - 103 : 200 - 97, 97:103]  # the composite's top row is the cutout's last
    assert whole[200 - 103 : 200 - 97, 97:103].max() > 100 and (hole == INVALID_RGB).all()
    outside = np.ones((200, 200), dtype=bool)
    outside[200 - 113 : 200 - 87, 87:113] = False  # beyond the hole and VIS's smoothing to NISP's resolution
    change = np.abs(rgb[outside].astype(int) - whole[outside])  # NaN moves VIS's percentile a little
    assert np.percentile(change, 99) <= 2 and (rgb[outside] == 0).mean() < (whole[outside] == 0).mean() + 0.01


def _without_band(layout, name):
    import yaml

    from schemas.layout import parse_layout

    data = yaml.safe_load(layout.to_yaml())
    data["bands"] = [band for band in data["bands"] if band["name"] != name]
    return parse_layout(data)


def test_composite_colours_orientation_and_nir_alignment() -> None:
    layout = load_layout("euclid-sglc2")
    rng = np.random.default_rng(1)
    vis = rng.normal(0, 1, (1, 200, 200))
    nir = rng.normal(0, 1, (3, 66, 66))
    vis[0, 20:30, 90:110] += 200.0  # VIS-only source near FITS row 0: the bottom of the display
    nir[2, 50:56, 20:26] += 200.0  # H-only source near the top of the display, left of centre
    rgb = make_composite({"vis": vis, "nir": nir}, layout).astype(int)
    blue_spot = rgb[199 - 25, 100]
    assert blue_spot[2] > 200
    assert blue_spot[0] < 40
    # centred grids: NIR pixel i maps to VIS pixel (i - 32.5) * 3 + 99.5, so the H source's centre
    # (52.5, 22.5) lands on VIS (159.5, 69.5), i.e. display row 199 - 159.5
    red_spot = rgb[round(199 - 159.5), 70]
    assert red_spot[0] > 200
    assert red_spot[2] < 40
    assert rgb[round(199 - 159.5), 130, 0] < 40


def test_composite_is_robust_to_nan() -> None:
    layout = load_layout("euclid-sglc2")
    images = simulate_object(layout, np.random.default_rng(2), lens=True)
    images["vis"][0, :50] = np.nan
    images["nir"][1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        partial = make_composite(images, layout)
        empty = make_composite(
            {"vis": np.full((1, 200, 200), np.nan), "nir": np.full((3, 66, 66), np.nan)}, layout
        )
        missing_group = make_composite({"vis": images["vis"]}, layout)
    assert partial.max() > 200
    assert (empty == INVALID_RGB).all()  # no valid pixel at all
    # VIS alone: grey, as a one-band layout's (it was blue, with black red and green channels)
    assert missing_group[..., 2].max() > 200
    np.testing.assert_array_equal(missing_group[..., 0], missing_group[..., 2])


def test_composite_rejects_wrong_groups_and_shapes() -> None:
    layout = load_layout("euclid-sglc2")
    with pytest.raises(ValueError, match="did you mean 'nir'"):
        make_composite({"nirr": np.zeros((3, 66, 66))}, layout)
    with pytest.raises(ValueError, match=r"\(3, 66, 66\)"):
        make_composite({"nir": np.zeros((3, 64, 64))}, layout)


def test_normalise_and_resample() -> None:
    image = np.arange(100.0).reshape(10, 10)
    normal = normalise_band(image)
    assert normal[
        np.unravel_index(np.argmin(np.abs(image - np.median(image))), image.shape)
    ] == pytest.approx(0.0, abs=0.02)
    assert not normalise_band(np.full((3, 3), 5.0)).any()
    assert not normalise_band(np.full((3, 3), np.nan)).any()
    flat = resample(np.full((66, 66), 3.0), 0.3, (200, 200), 0.1)
    np.testing.assert_allclose(flat, 3.0)
    ramp = resample(np.tile(np.arange(66.0), (66, 1)), 0.3, (200, 200), 0.1)
    np.testing.assert_allclose(ramp[:, 99:101].mean(), 32.5, atol=0.01)
    assert ramp[0, 0] == 0.0
    assert ramp[0, -1] == 65.0


# ---------------------------------------------------------------- plots


def labelled_scores(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int8)
    labels[rng.random(n) < 0.1] = -1
    scores = np.clip(rng.beta(2, 5, n) + 0.4 * (labels == 1), 0, 1).astype(np.float32)
    scores[rng.random(n) < 0.05] = np.nan
    return labels, scores


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5000


def test_evaluation_plots(tmp_path: Path) -> None:
    labels, scores = labelled_scores()
    plots = make_evaluation_plots(labels, scores, tmp_path / "figures", threshold=0.6)
    assert sorted(plots) == ["histogram", "precision_recall", "roc"]
    for path in plots.values():
        assert_png(path)
    unlabelled = make_evaluation_plots(None, scores, tmp_path / "unlabelled")
    assert list(unlabelled) == ["distribution"]
    assert_png(unlabelled["distribution"])
    one_class = make_evaluation_plots(np.ones_like(labels), scores, tmp_path / "one")
    assert list(one_class) == ["histogram"]


# ---------------------------------------------------------------- report


THETA_E = OutputSpec(
    "theta_e", "regression_gaussian", unit="arcsec", ucd="phys.angSize;src", description="Einstein radius"
)


def build_run(
    tmp_path: Path,
    *,
    n: int = 300,
    n_gallery: int = 12,
    tta: bool = True,
    ood: np.ndarray | None = None,
    band_flags: dict[str, np.ndarray] | None = None,
    theta_e: bool = False,
    spread: float = 0.05,
) -> tuple[Path, list[int]]:
    """A complete small run: catalog, metrics, plots, gallery PNGs and the report (``ood``: the
    catalog's ``ood_score`` column, as a bundle with feature statistics writes it; ``band_flags``:
    its ``flags_<band>`` columns, OR-ed into ``flags`` as a score run does; ``theta_e``: the model
    also declares an Einstein-radius output, so the report has its Declared-outputs table; ``spread``:
    the largest ``score_std``, the smallest being a fiftieth of it)."""
    rng = np.random.default_rng(5)
    labels, scores = labelled_scores(n, seed=5)
    flags = np.zeros(n, dtype=np.int32)
    flags[np.isnan(scores)] = Flag.MISSING_FILE | Flag.NOT_SCORED
    flags[:40:7] |= Flag.SOME_NONFINITE
    if ood is not None:
        flags[ood > 1] |= Flag.UNLIKE_TRAINING
    extra = {OOD_SCORE_COLUMN.name: ood} if ood is not None else {}
    for values in (band_flags or {}).values():
        flags |= values
    extra |= band_flags or {}
    score_std = rng.uniform(spread / 50, spread, n) if tta else np.zeros(n)
    layout_columns = CatalogLayout(extra=extra_column_specs(list(extra))) if extra else None
    outputs = None
    if theta_e:
        extra_specs = extra_column_specs(list(extra))
        layout_columns = CatalogLayout(outputs=(DEFAULT_SCORE, THETA_E), extra=extra_specs)
        radius = rng.uniform(0.3, 3.0, n)
        outputs = {"score": scores, "score_std": score_std, "theta_e": radius}
        outputs |= {"theta_e_err": radius / 10, "theta_e_std": radius / 20}
    catalog = make_catalog_table(
        object_ids=np.arange(200_000, 200_000 + n),
        ra=rng.uniform(0, 360, n),
        dec=rng.uniform(-60, 10, n),
        scores=None if theta_e else scores,
        score_std=None if theta_e else score_std,
        outputs=outputs,
        flags=flags,
        model_id="effnet-b0-sglc2",
        labels=labels,
        layout=layout_columns,
        extra=extra or None,
    )
    provenance = Provenance(
        model_id="effnet-b0-sglc2",
        model_sha256="ab" * 32,
        store="/data/<sglc2> & blind.zarr",
        layout="euclid-sglc2",
        code_version="0.1.0",
        date=datetime(2025, 6, 1, 12, tzinfo=UTC),
        threshold=0.5,
        tta=True,
        n_objects=n,
        n_scored=int(np.sum(~np.isnan(scores))),
        outputs=layout_columns.outputs_json() if theta_e else [],
        extras={  # as a score run records them: long paths and a hash (a narrow window wraps them)
            "model_path": "/data/models/" + "a-long-model-folder-name/" * 3 + "bundle",
            "source": "/survey/deliveries/2026-12/" + "tile_0000123456789/" * 2,
            "code_commit": "0123456789abcdef0123456789abcdef01234567+dirty",
        },
    )
    layout = load_layout("euclid-sglc2")
    top = select_top(catalog, n_gallery)
    images = {
        int(row.object_id): simulate_object(layout, rng, lens=row.label == 1)
        for row in top.itertuples(index=False)
    }
    pngs = render_gallery_pngs(images, layout, tmp_path / "report" / "gallery")
    metrics = evaluate(catalog["label"].to_numpy(), catalog["score"].to_numpy(), threshold=0.5)
    write_catalog(catalog, tmp_path, provenance, expected_n=n)
    write_metrics(metrics, tmp_path / "metrics.json")
    plots = make_evaluation_plots(
        catalog["label"].to_numpy(), catalog["score"].to_numpy(), tmp_path / "plots"
    )
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=provenance,
        metrics=metrics,
        plots=plots,
        gallery=gallery_items(catalog, pngs, layout),
        run_info={"workers": 2, "wall time": "<1 min>"},
    )
    return report, top["object_id"].tolist()


def test_gallery_helpers() -> None:
    catalog = make_catalog_table(
        object_ids=np.array([5, 6, 7, 8]),
        ra=np.array([1.0, np.nan, 3.0, 4.0]),
        dec=np.zeros(4),
        scores=np.array([0.2, 0.9, np.nan, 0.9]),
        score_std=np.zeros(4),
        flags=np.zeros(4),
        model_id="m",
    )
    assert select_top(catalog, 10)["object_id"].tolist() == [6, 8, 5]
    items = gallery_items(catalog, {8: Path("8.png"), 6: Path("6.png")})
    assert [(item.object_id, item.rank, item.label, item.ra) for item in items] == [
        (6, 1, -1, None),
        (8, 2, -1, 4.0),
    ]


def test_a_known_lens_is_named_on_its_card_and_its_page(tmp_path: Path) -> None:
    """Trial: the summary said "2 object(s) within 2 arcsec" of a known lens, but no card or page named
    it (the grading page did)."""
    from pipeline.catalog.known_lenses import KnownLenses, match_known_lenses

    ra, dec = np.array([150.0, 151.0, 152.0]), np.full(3, 2.0)
    offset = 0.08 / 3600 / np.cos(np.radians(2.0))  # 0.08 arcsec east of the first object
    known = KnownLenses.from_arrays(["Ca\u00f1a 1"], [150.0 + offset], [2.0], ["A"], source="mine.csv")
    catalog = make_catalog_table(
        object_ids=np.arange(3),
        ra=ra,
        dec=dec,
        scores=np.array([0.9, 0.8, 0.1]),
        score_std=np.zeros(3),
        flags=np.zeros(3),
        model_id="m",
        known_lens_matches=match_known_lenses(ra, dec, known),
    )
    layout = load_layout("euclid-sglc2")
    rng = np.random.default_rng(2)
    images = {object_id: simulate_object(layout, rng, lens=True) for object_id in range(3)}
    items = gallery_items(
        catalog, render_gallery_pngs(images, layout, tmp_path / "report" / "gallery"), layout
    )
    assert [item.known_lens for item in items] == ["Ca\u00f1a 1 (A, 0.08\u2033)", "", ""]
    provenance = small_provenance(n_objects=3, n_scored=3, layout="euclid-sglc2", known_lenses="mine.csv")
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=provenance,
        metrics=None,
        plots={},
        gallery=items,
        run_info={},
    )
    assert report.read_text().count("known: Ca\u00f1a 1 (A, 0.08\u2033)") == 1
    page = (report.parent / "gallery" / "0.html").read_text()
    assert "<th>Known lens (grade, separation)</th><td>Ca\u00f1a 1 (A, 0.08\u2033)</td>" in page
    assert "Known lens" not in (report.parent / "gallery" / "1.html").read_text()


def test_report_is_self_contained(tmp_path: Path) -> None:
    report, top_ids = build_run(tmp_path)
    html = report.read_text()
    for name in (
        "Summary",
        "Metrics",
        "AUROC",
        "TPR0",
        "TPR10",
        "Top candidates",
        "MISSING_FILE",
        "NOT_SCORED",
    ):
        assert name in html
    images = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert len(images) == 5 * len(top_ids) + 3  # composite and VIS, Y, J, H panels per candidate
    assert_relative_links_resolve(report)
    # The report folder copied alone keeps every link, the catalogs and metrics included.
    copied = shutil.copytree(report.parent, tmp_path / "elsewhere" / "report")
    assert_relative_links_resolve(copied / "report.html")
    for top_id in top_ids:
        assert_relative_links_resolve(copied / "gallery" / f"{top_id}.html")
    assert sorted(path.name for path in (report.parent / "figures").iterdir()) == [
        "precision_recall.png",
        "roc.png",
        "score_histogram.png",
    ]
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    copied_files = {"catalog.fits", "catalog.parquet", "catalog.vot", "metrics.json"}
    assert {f"files/{name}" for name in copied_files} <= set(links)
    assert re.search(r'class="name">J\d{6}\.\d\d[+-]\d{6}\.\d<', html)  # sexagesimal names
    assert html.count('class="scalebar" style="width: 25.0%"><span>5″</span>') == len(top_ids)  # 5″ of 20″
    assert re.search(r'class="std">± 0\.0\d\d<', html) and "± 0.000" not in html
    positions = [html.index(f'data-object-id="{object_id}"') for object_id in top_ids]
    assert positions == sorted(positions)
    assert "&lt;sglc2&gt; &amp; blind.zarr" in html
    assert "<sglc2>" not in html
    assert "&lt;1 min&gt;" in html
    # the run's date once as a reader writes it, UTC said once (ops trial: "2026-12-07T14:51:27Z UTC")
    assert '<time datetime="2025-06-01T12:00:00Z">2025-06-01 12:00:00 UTC</time>' in html
    assert "Z UTC" not in html


def assert_relative_links_resolve(page: Path) -> None:
    html = page.read_text()
    # an inline data: URI (the page icon) is part of the page; every other link is relative
    links = [link for link in re.findall(r'(?:src|href)="([^"]*)"', html) if not link.startswith("data:")]
    assert links
    assert not [link for link in links if re.match(r"^(?:[a-z]+:|//|/)", link) and not link.startswith("#")]
    for link in links:
        target = link.split("#", 1)[0]
        if target:
            assert (page.parent / target).is_file(), (page, link)


def test_no_spread_is_shown_without_one(tmp_path: Path) -> None:
    report, top_ids = build_run(tmp_path, n_gallery=3, tta=False)
    html = report.read_text()
    assert "±" not in html.split('id="gallery"', 1)[1].split("<footer>", 1)[0]
    candidate = (report.parent / "gallery" / f"{top_ids[0]}.html").read_text()
    assert "±" not in candidate and f"object {top_ids[0]}" in candidate
    # the badge stands apart from the caption before it ("... arcsec LENS", not "arcsecLENS")
    badge = re.search(r'(.)<span class="badge (?:lens|nonlens)">', candidate)
    assert badge and badge.group(1) == " "
    assert re.search(r"\.badge \{[^}]*margin-left: 8px", candidate)
    assert "ood_score" not in html and "ood_score" not in candidate  # a bundle without feature statistics


def test_cards_show_each_candidates_distance_from_the_training_objects(tmp_path: Path) -> None:
    ood = np.linspace(0.05, 3.0, 300).astype(np.float32)  # as the scorer writes it
    report, top_ids = build_run(tmp_path, n_gallery=6, ood=ood)
    gallery = report.read_text().split('id="gallery"', 1)[1].split("<footer>", 1)[0]
    for object_id in top_ids:
        value = ood[object_id - 200_000]
        card = gallery.split(f'<span class="id">{object_id}</span>', 1)[1].split('<div class="card', 1)[0]
        css = "ood high" if value > 1 else "ood"
        assert re.search(rf'<div class="{css}"[^>]*>ood_score {value:.2f}</div>', card)
        if value > 1:
            assert "UNLIKE_TRAINING" in card
        page = (report.parent / "gallery" / f"{object_id}.html").read_text()
        assert f"<td>ood_score {value:.2f} (flagged UNLIKE_TRAINING when above 1)</td>" in page
    assert {ood[i - 200_000] > 1 for i in top_ids} == {True, False}  # both kinds of card were checked
    from pipeline.evaluation.cards import ood_text as _ood

    # trial: 1.0027 was shown as 1.00 beside UNLIKE_TRAINING, whose text says above 1
    assert (_ood(1.0027), _ood(1.0), _ood(0.99999), _ood(float("nan"))) == (
        "ood_score 1.003",
        "ood_score 1.00",
        "ood_score 0.99999",
        None,
    )


def test_cards_and_candidate_pages_name_each_flagged_band(tmp_path: Path) -> None:
    """New-user trial: with a model reading VIS only, objects without a J file reached the gallery,
    whose J panel was black and captioned only "J, at its own resolution"."""
    n = 300
    band_flags = {f"flags_{band}": np.zeros(n, np.int32) for band in ("VIS", "Y", "J", "H")}
    band_flags["flags_J"][:] = Flag.MISSING_FILE
    band_flags["flags_H"][:] = Flag.SOME_NONFINITE
    report, top_ids = build_run(tmp_path, n=n, n_gallery=3, band_flags=band_flags)
    page = (report.parent / "gallery" / f"{top_ids[0]}.html").read_text()
    assert "J: no pixels, MISSING_FILE, at its own resolution" in page
    assert "H: SOME_NONFINITE, at its own resolution" in page and "VIS, at its own resolution" in page
    assert page.count('<figure class="flagged">') == 2
    assert "<th>Flags by band</th><td>J: MISSING_FILE; H: SOME_NONFINITE</td>" in page
    gallery = report.read_text().split('id="gallery"', 1)[1]
    assert gallery.count("(J: MISSING_FILE; H: SOME_NONFINITE)</div>") == 3
    plain, _ = build_run(tmp_path / "plain", n=n, n_gallery=3)  # a catalog without flags_<band>
    assert "Flags by band" not in (plain.parent / "gallery" / f"{top_ids[0]}.html").read_text()


def small_provenance(**fields) -> Provenance:
    """The provenance of a tiny made-up run (``fields`` override)."""
    defaults = {
        "model_id": "m",
        "model_sha256": "0" * 64,
        "store": "s.zarr",
        "layout": "sglc1-space",
        "code_version": "0.1.0",
        "date": datetime(2025, 1, 1, tzinfo=UTC),
        "threshold": 0.5,
        "tta": False,
    }
    return Provenance(**{**defaults, **fields})


def test_report_without_labels_or_gallery(tmp_path: Path) -> None:
    catalog = make_catalog_table(
        object_ids=np.arange(3),
        ra=np.zeros(3),
        dec=np.zeros(3),
        scores=np.array([0.1, 0.7, np.nan]),
        score_std=np.zeros(3),
        flags=np.array([0, 0, int(Flag.NOT_SCORED)]),
        model_id="m",
    )
    provenance = small_provenance(n_objects=3, n_scored=2)
    plots = make_evaluation_plots(None, catalog["score"].to_numpy(), tmp_path / "plots")
    with warnings.catch_warnings():  # trial: nothing scored leaked matplotlib's "cannot be log-scaled"
        warnings.simplefilter("error")
        for labels in (None, np.array([1, 0, -1])):
            nothing = make_evaluation_plots(labels, np.full(3, np.nan), tmp_path / "nothing")
            assert all(path.is_file() for path in nothing.values()), nothing
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=provenance,
        metrics=None,
        plots=plots,
        gallery=[],
        run_info={},
    )
    html = report.read_text()
    assert 'id="metrics"' not in html
    assert 'class="warning"' not in html
    assert "Score distribution" in html
    assert "No scored objects to show" in html
    assert (tmp_path / "report" / "figures" / "score_distribution.png").is_file()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(
            tmp_path / "other",
            catalog=catalog,
            provenance=provenance,
            metrics=None,
            plots={"roc": tmp_path / "missing.png"},
            gallery=[],
            run_info={},
        )


# ---------------------------------------------------------------- headless browser


def chromium_binary() -> str:
    for candidate in (os.environ.get("LENSHUNT_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    if os.environ.get("LENSHUNT_REQUIRE_BROWSER") == "1":
        pytest.fail(
            "LENSHUNT_REQUIRE_BROWSER=1 but no chromium found; install it with apt-get install chromium"
        )
    pytest.skip(
        "chromium not installed (apt-get install chromium); set LENSHUNT_REQUIRE_BROWSER=1 to fail instead"
    )


def run_chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def body_attributes(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium_binary()
    report, top_ids = build_run(tmp_path)
    url = report.resolve().as_uri()
    dom = run_chromium(
        binary, tmp_path / "profile-dom", "--dump-dom", "--virtual-time-budget=10000", url
    ).stdout
    attributes = body_attributes(dom)
    assert attributes["data-images-loaded"] == "true", attributes
    assert attributes["data-images-total"] == str(5 * len(top_ids) + 3)
    assert attributes["data-images-broken"] == "0"
    # each metric with its 95% interval beside it, as in metrics.json (fresh-user trial: point values only)
    metrics = read_metrics(tmp_path / "metrics.json")
    low, high = metrics.ci95.auroc
    assert low < metrics.auroc < high and high - low > 0.005
    from pipeline.evaluation import ci_text

    for name, field in (("AUROC", "auroc"), ("TPR0", "tpr0"), ("Recall (completeness)", "recall")):
        shown = f'{name}</td><td class="num">{format_metric(getattr(metrics, field))}<span class="ci"> ('
        assert shown + f"{ci_text(getattr(metrics.ci95, field))})</span></td>" in dom, name
    assert "95% CI: the 95% confidence interval of the value, from 1000 bootstrap resamples" in dom
    page = (report.parent / "gallery" / f"{top_ids[0]}.html").resolve().as_uri()
    dom = run_chromium(
        binary, tmp_path / "profile-page", "--dump-dom", "--virtual-time-budget=10000", page
    ).stdout
    attributes = body_attributes(dom)
    assert (attributes["data-images-loaded"], attributes["data-images-total"]) == ("true", "5"), attributes

    screenshot = tmp_path / "report.png"
    run_chromium(
        binary, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,2000", url
    )
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1400, 2000)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 20  # a rendered page, not a blank one
    assert (pixels[:60].mean(axis=(0, 1)) < 60).all()  # the dark header is at the top


def test_headless_chromium_sees_a_broken_image(tmp_path: Path) -> None:
    binary = chromium_binary()
    report, top_ids = build_run(tmp_path, n_gallery=3)
    (report.parent / "gallery" / f"{top_ids[1]}.png").unlink()
    dom = run_chromium(
        binary, tmp_path / "profile", "--dump-dom", "--virtual-time-budget=10000", report.resolve().as_uri()
    ).stdout
    attributes = body_attributes(dom)
    assert attributes["data-images-loaded"] == "false"
    assert attributes["data-images-broken"] == "1"


def _observed(layout: Layout, group: str, sources: list[tuple[float, float, float, float]], psf: float):
    """Gaussian sources (x, y, sigma arcsec, flux) seen with a Gaussian PSF of ``psf`` arcsec."""
    ny, nx = layout.group_shape(group)
    scale = layout.group_pixel_scale(group)
    y, x = (np.mgrid[:ny, :nx] - (np.array([ny, nx])[:, None, None] - 1) / 2) * scale
    image = np.zeros((ny, nx))
    for x0, y0, sigma, flux in sources:
        width2 = sigma**2 + psf**2
        image += (
            flux * scale**2 / (2 * np.pi * width2) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * width2))
        )
    return image + np.random.default_rng(3).normal(0, 1e-4, image.shape)


def test_composite_of_a_grey_scene_has_no_blue_cores_or_coloured_rims() -> None:
    """A galaxy and a compact source of the same flux in every band, VIS sharper than NIR (as in
    Euclid: PSF FWHM 0.17" against 0.5"), must look grey: no blue core, no coloured rim."""
    layout = load_layout("euclid-sglc2")
    sources = [(0.0, 0.0, 0.4, 10.0), (-6.0, 5.0, 0.0, 3.0)]
    vis = _observed(layout, "vis", sources, 0.17 / 2.355)
    nir = [_observed(layout, "nir", sources, 0.5 / 2.355) for _ in range(3)]
    rgb = make_composite({"vis": vis[None], "nir": np.asarray(nir)}, layout).astype(float)
    lit = rgb.max(axis=-1) > 120  # the visible bodies of the two sources
    assert lit.sum() > 50
    ratio = rgb[..., 2][lit] / np.maximum(rgb[..., 0][lit], 1)  # blue / red; the old stretch: 0 to 10
    low, high = np.percentile(ratio, [5, 95])
    assert low > 0.8 and high < 1.25, (low, high)
    for row, column in [(99, 99), (49, 39)]:  # the galaxy's core and the compact source's
        core = rgb[row : row + 2, column : column + 2].mean(axis=(0, 1))
        assert abs(core[2] - core[0]) < 30, core  # no blue dot (the old stretch: 103)


def test_input_range_warnings_are_shown_at_the_top(tmp_path: Path) -> None:
    """The score stage's warnings (provenance extras) stand out in the summary, once each."""
    catalog = make_catalog_table(
        object_ids=np.arange(2),
        ra=np.zeros(2),
        dec=np.zeros(2),
        scores=np.array([0.1, 0.7]),
        score_std=np.zeros(2),
        flags=np.zeros(2, dtype=np.int32),
        model_id="m",
    )
    warning = "band VIS: typical cutout noise 3e+01 ... (raw counts where the model saw fluxes?)"
    provenance = small_provenance(  # one warning per line
        n_objects=2, n_scored=2, extras={"input_warnings": warning, "batch_size": 8}
    )
    report = build_report(
        tmp_path / "report",
        catalog=catalog,
        provenance=provenance,
        metrics=None,
        plots={},
        gallery=[],
        run_info={},
    )
    html = report.read_text()
    assert html.count('class="warning"') == 1 and "raw counts where the model saw fluxes?" in html
    assert "input_warnings" not in html  # not repeated as a raw extras row


def test_the_summary_names_the_unscored_objects_and_why(tmp_path: Path) -> None:
    """Trial: the report counted "Objects not scored 1", naming neither the object (100025) nor why
    (its J and H files missing)."""
    n = 300
    band_flags = {f"flags_{band}": np.zeros(n, np.int32) for band in ("VIS", "Y", "J", "H")}
    _, scores = labelled_scores(n, seed=5)
    unscored = np.flatnonzero(np.isnan(scores))
    assert 0 < len(unscored) < 20
    band_flags["flags_J"][unscored] = Flag.MISSING_FILE
    band_flags["flags_H"][unscored[0]] = Flag.MISSING_FILE
    report, _ = build_run(tmp_path, n=n, n_gallery=3, band_flags=band_flags)
    page = report.read_text()
    first = 200_000 + int(unscored[0])
    said = f"<td>{len(unscored)}: {first} (MISSING_FILE in J, H); "
    assert said in page, page.split("Not scored")[1][:300]
    row = re.search(r"<th[^>]*>Not scored</th>\s*<td>([^<]*)</td>", page)
    assert row is not None, page[:3000]
    assert row.group(1).count("MISSING_FILE in J") == len(unscored)
    assert row.group(1).endswith("(the catalog rows whose score is NaN; their flags say why)")
    assert "NOT_SCORED" not in row.group(1)  # every unscored row has it (trial: said for each)


@pytest.mark.parametrize("name", ["imageEUC_VIS-100002.fits", "imageSDSS_R-100002.fits"])
def test_a_noise_dominated_real_cutout_is_drawn_with_dark_sky_and_a_bright_source(
    name: str, real_samples: Path
) -> None:
    """Trial: a real challenge cutout (its 99.5th percentile 4 sigma above sky) was salt and pepper: the
    percentile white made 1-sigma noise 60 % grey (sky pixels' 90th percentile 146 of 255). The white
    point is now at least MIN_WHITE_SIGMA noise sigmas; the source's core stays white."""
    from astropy.io import fits

    from pipeline.evaluation.composites import band_panel

    data = fits.getdata(real_samples / name)
    for picture in (band_panel(data), make_composite({"vis": data[None]}, load_layout("sglc1-space"))):
        grey = picture[..., 0].astype(int)
        sky = np.concatenate([grey[:25].ravel(), grey[-25:].ravel()])
        assert np.percentile(sky, 90) < 60 and grey[40:60, 40:60].max() >= 250
