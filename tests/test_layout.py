"""Layouts are data: the shipped ones load, and wrong fields fail with a message naming them."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest
import yaml

from schemas.layout import LayoutError, available_layouts, load_layout


def test_shipped_layouts_load_with_expected_bands():
    assert set(available_layouts()) >= {"euclid-sglc2", "sglc1-space", "sglc1-ground"}
    euclid = load_layout("euclid-sglc2")
    assert euclid.groups == {"vis": ("VIS",), "nir": ("Y", "J", "H")}
    assert euclid.band("VIS").shape == (200, 200) and euclid.band("H").pixel_scale_arcsec == 0.3
    assert euclid.band("Y").path_for(100002, euclid.id_digits) == "Public/EUC_Y/imageEUC_Y-100002.fits"
    assert euclid.catalog.label_rule == "n_source_im > 0 and mag_eff > 1.6 and n_pix_source > 20"
    ground = load_layout("sglc1-ground")
    assert ground.band_names == ("R", "I", "G", "U") and ground.masked_value == 100.0
    assert ground.band("U").path_for(7, 6) == "Band4/imageSDSS_U-000007.fits"
    assert load_layout("sglc1-space").band("VIS").shape == (101, 101)


def test_layout_round_trips_through_yaml(tmp_path):
    layout = load_layout("sglc1-ground")
    path = tmp_path / "copy.yaml"
    path.write_text(layout.to_yaml())
    assert load_layout(path) == layout


def _write(tmp_path, mutate):
    data = yaml.safe_load(load_layout("euclid-sglc2").to_yaml())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["bands"][0].update(pixel_scale_arcsec=-1), r"bands\.0\.pixel_scale_arcsec"),
        (lambda d: d["bands"][1].update(path="Public/EUC_Y/no-id.fits"), r"bands\.1\.path.*\{id\}"),
        (
            lambda d: d["bands"][0].update(path="objs/{id}/VIS.fits"),
            r"bands\.0\.path.*must be in the file name",
        ),
        (lambda d: d["bands"][2].update(shape=[66, 60]), r"group 'nir' mixes shapes"),
        (lambda d: d.update(colour="blue"), r"colour: Extra inputs"),
        (lambda d: d["bands"].append(dict(d["bands"][0])), r"band names must be unique"),
        (  # review: flags_J and flags_j would be one FITS column
            lambda d: d["bands"].append(dict(d["bands"][2], name=d["bands"][2]["name"].lower())),
            r"band names must differ in more than case.*\['J', 'j'\]",
        ),
        (lambda d: d["catalog"].pop("label_rule"), r"catalog\.label_rule: Field required"),
        (  # trial: flags_<80 a's> passed ingest, then failed writing the FITS catalog
            lambda d: d["bands"][0].update(name="a" * 63),
            r"bands\.0\.name.*at most 62 characters",
        ),
        (  # a placeholder WCS named as the position's source
            lambda d: d.update(wcs_position=False),
            r"coordinates name CRVAL1/CRVAL2 \(the WCS centre\) but wcs_position is false",
        ),
        (
            lambda d: d.update(wcs_position=False, coordinates=[]),
            r"wcs_position is false .* and coordinates name no position cards",
        ),
    ],
)
def test_invalid_layout_names_the_field(tmp_path, mutate, expected):
    with pytest.raises(LayoutError, match=expected):
        load_layout(_write(tmp_path, mutate))


def test_unknown_layout_suggests_near_miss():
    with pytest.raises(LayoutError, match="Did you mean 'euclid-sglc2'"):
        load_layout("euclid-sglc")


def test_unknown_band_suggests_near_miss():
    with pytest.raises(KeyError, match="Did you mean 'VIS'"):
        load_layout("euclid-sglc2").band("VIZ")


RESERVED_GROUP_YAML = """\
name: reserved-group
bands:
  - {{name: R, path: "R/img-{{id}}.fits", shape: [21, 21], pixel_scale_arcsec: 0.2, group: {group}}}
  - {{name: I, path: "I/img-{{id}}.fits", shape: [21, 21], pixel_scale_arcsec: 0.2, group: {group}}}
"""


@pytest.mark.parametrize(
    "group",
    [
        "flags",
        "label",
        "ra",
        "dec",
        "object_id",
        "band",
        "header_cards",
        "header_byte",
        "object",
        "band_flags",
    ],
)
def test_a_group_named_like_a_store_variable_is_refused(tmp_path, group):
    """Trial: group 'flags' passed validation, then ingest failed in xarray (and its task retried)."""
    path = tmp_path / "reserved.yaml"
    path.write_text(RESERVED_GROUP_YAML.format(group=group))
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert str(caught.value) == (
        f"layout {path} is invalid: "
        + "; ".join(
            f"bands.{index}.group: Value error, group {group!r} is a name the store uses itself (reserved: "
            "band, band_flags, band_pixel_scale, band_zero_point, dec, flags, header_byte, header_cards, "
            f"label, object, object_id, ra); name the group otherwise, e.g. '{group}_img'"
            for index in (0, 1)
        )
    )


def test_a_group_naming_another_groups_dimension_is_refused(tmp_path):
    path = _write(tmp_path, lambda d: d["bands"][0].update(group="nir_band"))
    with pytest.raises(
        LayoutError, match=r"group 'nir_band' brings the store name 'nir_band', which group 'nir'"
    ):
        load_layout(path)
    assert load_layout(_write(tmp_path, lambda d: d["bands"][0].update(group="flags_img"))).groups


@pytest.mark.parametrize("group", ["flags", "band"])
def test_ingest_with_a_reserved_group_says_so_and_makes_no_store(tmp_path, capsys, group):
    from cutouts import write_set

    from flows.cli import main
    from schemas.layout import parse_layout

    path = tmp_path / "reserved.yaml"
    path.write_text(RESERVED_GROUP_YAML.format(group=group))
    valid = parse_layout(yaml.safe_load(RESERVED_GROUP_YAML.format(group="ground")))
    write_set(valid, tmp_path / "src", [100001, 100002])  # the same files, which ingest would read
    assert main(["ingest", str(tmp_path / "src"), str(tmp_path / "s.zarr"), "--layout", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"lenshunt ingest: error: layout {path} is invalid: bands.0.group: Value error, group {group!r}"
        in err
    )
    assert "Traceback" not in err and "found in both data_vars and coords" not in err
    assert not (tmp_path / "s.zarr").exists()


def test_the_first_challenges_layouts_declare_their_wcs_a_placeholder(real_samples):
    """Every first-challenge file carries CRVAL1 = CRVAL2 = 0 and its position in RA/DEC cards (trial:
    objects without usable cards were stored at (0, 0)); the second challenge's WCS is real."""
    from astropy.io import fits

    for name, file in (
        ("sglc1-space", "imageEUC_VIS-100002.fits"),
        ("sglc1-ground", "imageSDSS_R-100002.fits"),
    ):
        header = fits.getheader(real_samples / file)
        assert (header["CRVAL1"], header["CRVAL2"]) == (0.0, 0.0) and header["RA"] != 0.0
        layout = load_layout(name)
        assert layout.wcs_position is False
        assert [(spec.ra, spec.dec, spec.unit) for spec in layout.coordinates] == [("RA", "DEC", "rad")]
    assert load_layout("euclid-sglc2").wcs_position is True


def _two_band_layout(tmp_path, path_r: str, path_i: str):
    """A flat two-band layout (the fresh-user trial's ``{id}_<band>.fits.fz`` of 64 x 64 pixels)."""
    bands = [
        {"name": name, "path": path, "shape": [64, 64], "pixel_scale_arcsec": 0.2, "group": "opt"}
        for name, path in (("r", path_r), ("i", path_i))
    ]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump({"name": "two", "id_digits": 6, "bands": bands}))
    return path


@pytest.mark.parametrize(
    ("path_r", "path_i", "example"),
    [
        ("{id}_r.fits.fz", "{id}_r.fits.fz", "111111_r.fits.fz"),  # fresh-user trial: stored i == r, exit 0
        ("{id}_r.fits.fz", "{id}_r.fits", "111111_r.fits.fz"),  # a .fits path finds the .fz files too
        ("{id}_r.fits", "{id}_r.FITS.gz", "111111_r.FITS.gz"),  # its suffix in any case, gzip on it
        ("{id}_r.fits", "{id}_r.fz", "111111_r.fz"),  # .fz alone is a form of .fits
        ("{id}_r.fits", "./{id}_r.fits.bz2", "111111_r.fits.bz2"),  # the same folder, written otherwise
        ("{id}_r.fits", "{id}_r.fits.xz", "111111_r.fits.xz"),  # xz on it (review: not found at all)
        ("{id}_r.fits.fz", "{id}1_r.fits.fz", "111111_r.fits.fz"),  # object 111111 of r, 11111 of i
    ],
)
def test_two_bands_finding_the_same_files_are_refused_as_discovery_would_share_them(
    tmp_path, path_r, path_i, example
):
    """Fresh-user trial: bands r and i both with path ``{id}_r.fits.fz`` (or i with ``{id}_r.fits``)
    ingested with exit 0 and no flag, i holding r's pixels. The refusal names both bands, both paths
    and a file name both find, and agrees with discovery: a file of that name is given to both."""
    from cutouts import write_cutout

    from pipeline.sources import discover
    from schemas.layout import Band, Layout

    layout_file = _two_band_layout(tmp_path, path_r, path_i)
    with pytest.raises(LayoutError) as refused:
        load_layout(layout_file)
    message = str(refused.value)
    assert f"bands 'r' and 'i' would read the same files (paths {path_r!r} and {path_i!r} both " in message
    assert f"match e.g. {example!r}" in message and "give each band its own files" in message
    data = yaml.safe_load(layout_file.read_text())  # the layout unchecked: discovery gives both one file
    unchecked = Layout.model_construct(name="two", bands=tuple(Band(**band) for band in data["bands"]))
    plain = tmp_path / "plain.fits"
    write_cutout(plain, np.ones((64, 64), np.float32), 10.0, 20.0, scale_arcsec=0.2)
    packers = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
    packed = packers.get(Path(example).suffix, bytes)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / example).write_bytes(packed(plain.read_bytes()))
    manifest = discover(unchecked, tmp_path / "src")
    found = {band: {path for path in paths if path} for band, paths in manifest.paths.items()}
    assert found == {"r": {str(tmp_path / "src" / example)}, "i": {str(tmp_path / "src" / example)}}


@pytest.mark.parametrize(
    ("path_r", "path_i"),
    [
        ("{id}_r.fits.fz", "{id}_i.fits.fz"),
        ("R/img-{id}.fits", "I/img-{id}.fits"),  # one name in two folders
        ("{id}_r.fits", "{id}_rr.fits"),
        ("x{id}.fits", "y{id}.fits"),
    ],
)
def test_bands_with_files_of_their_own_load(tmp_path, path_r, path_i):
    layout = load_layout(_two_band_layout(tmp_path, path_r, path_i))
    assert [band.path for band in layout.bands] == [path_r, path_i]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "{id}_g*.fits.fz",
            r"holds \*: band paths are not glob patterns; they take '\{id\}' \(the object id\) only",
        ),
        ("{id}_?.fits", r"holds \?: band paths are not glob patterns"),
        ("{id}_[gr].fits", r"holds \[ \]: band paths are not glob patterns"),
        ("Band*/{id}.fits", r"holds \*: band paths are not glob patterns"),
        ("{id}_{band}.fits.fz", r"holds \{band\}: band paths take no placeholder but '\{id\}'"),
    ],
)
def test_glob_characters_and_other_placeholders_in_a_band_path_are_refused(tmp_path, path, expected):
    """Fresh-user trial: ``{id}_g*.fits.fz`` (the ``*`` taken literally) found no file, and every
    object's g was MISSING_FILE in a committed store, with nothing saying globs are not supported;
    ``{id}_{band}.fits.fz`` in every band was refused only as bands sharing files."""
    with pytest.raises(LayoutError, match=r"bands\.0\.path: Value error, " + expected):
        load_layout(_two_band_layout(tmp_path, path, "{id}_i.fits.fz"))
