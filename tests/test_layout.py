"""Layouts are data: the shipped ones load, and wrong fields fail with a message naming them."""

from __future__ import annotations

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
