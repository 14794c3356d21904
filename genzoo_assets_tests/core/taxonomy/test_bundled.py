import re

from genzoo_assets.core.taxonomy.bundled import bundled_species, dog_breeds

SCI = re.compile(r"^[A-Z][a-z]+ [a-z]+$")


def test_dog_breeds_are_247_unique_names():
    breeds = dog_breeds()
    assert len(breeds) == 247
    assert len({b.casefold() for b in breeds}) == 247
    assert {"Labrador Retriever", "German Shepherd Dog", "Löwchen"} <= set(breeds)
    assert all(b == b.strip() and b for b in breeds)


def test_bundled_species_cover_laurasiatheria_quadrupeds():
    df = bundled_species()
    assert len(df) >= 120 and df["scientific_name"].is_unique
    assert all(SCI.match(s) for s in df["scientific_name"])
    assert set(df["order"]) == {"Carnivora", "Artiodactyla", "Perissodactyla", "Pholidota"}
    families = set(df["family"])
    assert {
        "Felidae",
        "Canidae",
        "Ursidae",
        "Mustelidae",
        "Hyaenidae",
        "Viverridae",
        "Procyonidae",
        "Bovidae",
        "Cervidae",
        "Giraffidae",
        "Suidae",
        "Hippopotamidae",
        "Camelidae",
        "Equidae",
        "Rhinocerotidae",
        "Tapiridae",
        "Manidae",
    } <= families
    assert not families & {"Delphinidae", "Balaenidae", "Phocidae", "Otariidae"}
    assert (df["genus"] == df["scientific_name"].str.split(" ").str[0]).all()
    assert "Canis familiaris" not in set(df["scientific_name"])
