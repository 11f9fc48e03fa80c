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
