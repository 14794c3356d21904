import pytest

from genzoo_assets.core.taxonomy.mdd import MDDFormatError, filter_mdd, load_mdd

V1_HEADER = (
    "sciName,id,mainCommonName,majorType,majorSubtype,order,suborder,infraorder,family,"
    "genus,specificEpithet,extinct,domestic"
)
V1_ROWS = [
    "Panthera_leo,1,Lion,Placentalia,Laurasiatheria,CARNIVORA,FELIFORMIA,NA,FELIDAE,Panthera,leo,0,0",
    "Sorex_araneus,2,Common Shrew,Placentalia,Laurasiatheria,EULIPOTYPHLA,NA,NA,SORICIDAE,Sorex,araneus,0,0",
    "Myotis_myotis,3,Greater Mouse-eared Bat,Placentalia,Laurasiatheria,CHIROPTERA,NA,NA,"
    "VESPERTILIONIDAE,Myotis,myotis,0,0",
    "Tursiops_truncatus,4,Common Bottlenose Dolphin,Placentalia,Laurasiatheria,ARTIODACTYLA,"
    "WHIPPOMORPHA,CETACEA,DELPHINIDAE,Tursiops,truncatus,0,0",
    "Hippotragus_leucophaeus,5,Bluebuck,Placentalia,Laurasiatheria,ARTIODACTYLA,RUMINANTIA,PECORA,"
    "BOVIDAE,Hippotragus,leucophaeus,1,0",
    "Mus_musculus,6,House Mouse,Placentalia,Euarchontoglires,RODENTIA,NA,NA,MURIDAE,Mus,musculus,0,0",
    "Equus_caballus,7,Domestic Horse,Placentalia,Laurasiatheria,PERISSODACTYLA,NA,NA,EQUIDAE,Equus,caballus,0,1",
    "Phoca_vitulina,8,Harbor Seal,Placentalia,Laurasiatheria,CARNIVORA,CANIFORMIA,NA,PHOCIDAE,Phoca,vitulina,0,0",
]
V2_HEADER = (
    "sciName,id,mainCommonName,subclass,infraclass,magnorder,superorder,order,suborder,family,"
    "genus,extinct,domestic"
)
V2_ROWS = [
    "Panthera_leo,1,Lion,Theria,Placentalia,Boreoeutheria,Laurasiatheria,Carnivora,Feliformia,Felidae,Panthera,0,0",
    "Balaena_mysticetus,2,Bowhead Whale,Theria,Placentalia,Boreoeutheria,Laurasiatheria,Artiodactyla,"
    "Whippomorpha,Balaenidae,Balaena,0,0",
    "Bos_taurus,3,Domestic Cattle,Theria,Placentalia,Boreoeutheria,Laurasiatheria,Artiodactyla,Ruminantia,"
    "Bovidae,Bos,FALSE,TRUE",
]


def _write(tmp_path, name, header, rows):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_v1_columns_normalised(tmp_path):
    df = load_mdd(_write(tmp_path, "v1.csv", V1_HEADER, V1_ROWS))
    lion = df.set_index("scientific_name").loc["Panthera leo"]
    assert (lion.common_name, lion.order, lion.family, lion.genus, lion.superorder) == (
        "Lion",
        "Carnivora",
        "Felidae",
        "Panthera",
        "Laurasiatheria",
    )
    assert df["extinct"].dtype == bool and df["extinct"].sum() == 1
    assert df.set_index("scientific_name").loc["Equus caballus", "domestic"]
    assert df.set_index("scientific_name").loc["Tursiops truncatus", "infraorder"] == "Cetacea"


def test_v2_columns_normalised(tmp_path):
    df = load_mdd(_write(tmp_path, "v2.csv", V2_HEADER, V2_ROWS))
    assert list(df["scientific_name"]) == ["Panthera leo", "Balaena mysticetus", "Bos taurus"]
    assert set(df["superorder"]) == {"Laurasiatheria"}
    assert df.set_index("scientific_name").loc["Bos taurus", "domestic"]
    assert not df["extinct"].any()


def test_filter_defaults(tmp_path):
    kept = filter_mdd(load_mdd(_write(tmp_path, "v1.csv", V1_HEADER, V1_ROWS)))
    assert sorted(kept["scientific_name"]) == ["Equus caballus", "Panthera leo"]
    with_extinct = filter_mdd(load_mdd(tmp_path / "v1.csv"), include_extinct=True, drop_taxa=())
    assert "Hippotragus leucophaeus" in set(with_extinct["scientific_name"])
    assert "Sorex araneus" not in set(with_extinct["scientific_name"])
    v2 = filter_mdd(load_mdd(_write(tmp_path, "v2.csv", V2_HEADER, V2_ROWS)))
    assert sorted(v2["scientific_name"]) == [
        "Bos taurus",
        "Panthera leo",
    ]  # whale dropped by family


def test_missing_columns_named(tmp_path):
    path = _write(tmp_path, "odd.csv", "sciName,order,family", ["Panthera_leo,CARNIVORA,FELIDAE"])
    with pytest.raises(MDDFormatError, match="odd.csv") as err:
        load_mdd(path)
    assert "extinct" in str(err.value) and "mainCommonName" in str(err.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"\xff\xfe\xfa bad bytes,\xff\n", "UTF-8"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(MDDFormatError, match=message):
        load_mdd(path)


def test_header_only_and_bad_extinct(tmp_path):
    with pytest.raises(MDDFormatError, match="no species rows"):
        load_mdd(_write(tmp_path, "head.csv", V2_HEADER, []))
    bad = V2_ROWS[0].replace(",0,0", ",maybe,0")
    with pytest.raises(MDDFormatError, match="extinct.*maybe"):
        load_mdd(_write(tmp_path, "bad.csv", V2_HEADER, [bad]))
    with pytest.raises(MDDFormatError, match="does not exist"):
        load_mdd(tmp_path / "nope.csv")
