"""Partitions: species is dynamic (users add species); per-sample assets are species × shard."""

import dagster as dg

SPECIES_PARTITIONS_NAME = "species"
NUM_SHARDS = 64
SHARD_KEYS = [f"{i:03d}" for i in range(NUM_SHARDS)]

species_partitions = dg.DynamicPartitionsDefinition(name=SPECIES_PARTITIONS_NAME)
shard_partitions = dg.StaticPartitionsDefinition(SHARD_KEYS)
sample_partitions = dg.MultiPartitionsDefinition(
    {"species": species_partitions, "shard": shard_partitions}
)

# "val" scores the validation split: the sampling plan's input, never a reported test result.
TEST_SETS = ["heldout", "animal3d", "val"]
test_set_partitions = dg.StaticPartitionsDefinition(TEST_SETS)


def species_and_shard(context: dg.AssetExecutionContext) -> tuple[str, str]:
    keys = context.partition_key.keys_by_dimension
    return keys["species"], keys["shard"]


def sample_partition_key(species: str, shard: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"species": species, "shard": shard})
