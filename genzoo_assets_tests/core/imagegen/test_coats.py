from genzoo_assets.core.imagegen.coats import match_rule


def test_scientific_name_is_read_before_the_family():
    """``scientific_name`` (the species table's column) ranks above the family: Equus zebra gets stripes."""
    info = {
        "common_name": "",
        "scientific_name": "Equus zebra",
        "genus": "Equus",
        "family": "Equidae",
        "order": "Perissodactyla",
    }
    rule, name = match_rule("sp-0001", info, "a photo of an animal")
    assert rule["keywords"] == ["zebra"] and name == "zebra"
