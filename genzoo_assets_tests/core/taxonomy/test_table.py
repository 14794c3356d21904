import pandas as pd
import pytest

from genzoo_assets.core.taxonomy.table import (
    TABLE_COLUMNS,
    InvalidSpeciesError,
    UnknownSpeciesError,
    _dedupe_keys,
    add_species,
    build_species_table,
    resolve_species,
    slugify,
    validate_partition_key,
)

INJECTION = "lion'; DROP TABLE samples; --"


@pytest.fixture(scope="module")
def table():
    return build_species_table()


def test_slugify():
    assert slugify("Panthera leo") == "panthera-leo"
    assert slugify("Löwchen") == "lowchen"
    assert slugify("Cirneco dell'Etna") == "cirneco-delletna"
    assert slugify("a|b,c[d]e...f") == "a-b-c-d-e-f"
    assert slugify(INJECTION) == "lion-drop-table-samples"
    with pytest.raises(InvalidSpeciesError, match="no letters"):
        slugify("!!!")


@pytest.mark.parametrize(
    "key", ["a|b", "a,b", "x[0]", "a...b", "Lion", "lion ", "-lion", "", "lion;drop"]
)
def test_validate_partition_key_rejects(key):
    with pytest.raises(InvalidSpeciesError, match="partition key"):
        validate_partition_key(key)


def test_forbidden_characters_named():
    with pytest.raises(InvalidSpeciesError) as err:
        validate_partition_key("a|b,c")
    assert "'a|b,c'" in str(err.value) and "'|'" in str(err.value) and "','" in str(err.value)


def test_table_keys_and_dogs(table):
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["key"].is_unique
    assert all(validate_partition_key(k) == k for k in table["key"])
    dogs = table[table["is_dog"]]
    assert len(dogs) == 247 and dogs["key"].str.startswith("dog-").all()
    assert set(dogs["scientific_name"]) == {"Canis lupus familiaris"}
    assert set(dogs["family"]) == {"Canidae"} and set(dogs["order"]) == {"Carnivora"}
    assert "dog-labrador-retriever" in set(dogs["key"])


@pytest.mark.parametrize(
    "size, fraction, per_shard", [(1_000_000, 0.5, 64), (1001, 0.5, 10), (7777, 0.3, 64)]
)
def test_plan_sums_exactly(size, fraction, per_shard):
    t = build_species_table(dataset_size=size, dog_fraction=fraction, samples_per_shard=per_shard)
    assert t["planned_samples"].sum() == size
    n_dog = t.loc[t["is_dog"], "planned_samples"].sum()
    assert abs(n_dog - size * fraction) <= 0.5
    for _, group in t.groupby("is_dog"):
        assert group["planned_samples"].max() - group["planned_samples"].min() <= 1
    assert (t["planned_shards"] == -(-t["planned_samples"] // per_shard)).all()
    assert t["share"].sum() == pytest.approx(1.0)
    assert t.equals(
        build_species_table(dataset_size=size, dog_fraction=fraction, samples_per_shard=per_shard)
    )


def test_key_collisions_resolved_deterministically():
    df = pd.DataFrame(
        {
            "scientific_name": ["Panthera leo", "Panthera_leo", "Canis familiaris", "Felis catus"],
            "common_name": ["Lion", "Lion again", "Dog", "Cat"],
        }
    )
    t = build_species_table(df, dataset_size=100)
    others = t[~t["is_dog"]]
    assert sorted(others["key"]) == ["felis-catus", "panthera-leo"]
    extra = pd.DataFrame(
        [
            {
                "key": "dog-akita",
                "scientific_name": "Canis lupus familiaris",
                "common_name": "Akita",
                "order": "Carnivora",
                "family": "Canidae",
                "genus": "Canis",
                "is_dog": True,
                "source": "x",
            }
        ]
    )
    rows = pd.concat([t.iloc[:, :8], extra], ignore_index=True)
    keys = _dedupe_keys(rows)["key"]
    assert keys.is_unique and "dog-akita-2" in set(keys)


def test_resolve_by_names(table):
    for name in ("Panthera leo", "panthera_LEO", "Lion", "  lion ", "panthera-leo"):
        assert resolve_species(name, table)["key"] == "panthera-leo"
    assert resolve_species("labrador retriever", table)["key"] == "dog-labrador-retriever"


def test_unknown_species_suggests(table):
    with pytest.raises(UnknownSpeciesError, match="'Panthera lep'.*Panthera leo"):
        resolve_species("Panthera lep", table)
    with pytest.raises(ValueError, match="Lyon.*Lion"):
        resolve_species("Lyon", table)


def test_add_species_idempotent(table):
    row = {
        "scientific_name": "Nandinia binotata",
        "common_name": "African Palm Civet",
        "order": "Carnivora",
        "family": "Nandiniidae",
    }
    t2 = add_species(table, row)
    assert len(t2) == len(table) + 1 and t2["planned_samples"].sum() == 1_000_000
    assert t2.loc[t2["is_dog"], "planned_samples"].sum() == 500_000
    assert "nandinia-binotata" in set(t2["key"])
    assert add_species(t2, {"scientific_name": "nandinia_binotata"}).equals(t2)
    assert len(table) == 429  # input untouched


def test_sql_crafted_names_cannot_inject(table):
    with pytest.raises(UnknownSpeciesError):
        resolve_species(INJECTION, table)
    with pytest.raises(InvalidSpeciesError, match="scientific name"):
        add_species(table, {"scientific_name": INJECTION})
    with pytest.raises(InvalidSpeciesError, match="partition key"):
        add_species(
            table, {"scientific_name": "Panthera nova", "key": "x'; DROP TABLE samples; --"}
        )
    t = add_species(table, {"is_dog": True, "common_name": INJECTION})
    new = t[t["source"] == "user"].iloc[0]
    assert new["key"] == "dog-lion-drop-table-samples"
    assert new["common_name"] == INJECTION  # kept verbatim as data, never as SQL
