"""The asset graph as a reviewed file: a change to keys, partitions, backfill policies, deps,
pools, checks or tags shows up as a diff of ``asset_graph.snapshot.yaml`` next to this test.

After an intended change to the graph, regenerate the file and commit it with the change::

    GENZOO_UPDATE_SNAPSHOT=1 python -m pytest genzoo_assets_tests/defs/test_graph_snapshot.py

(the test then rewrites the file and fails once, so a regeneration is never silent).
"""

import json
import os
from pathlib import Path

import dagster as dg
import yaml

SNAPSHOT = Path(__file__).with_name("asset_graph.snapshot.yaml")
UPDATE_ENV = "GENZOO_UPDATE_SNAPSHOT"


def _partitions(pd) -> object:
    if pd is None:
        return None
    if isinstance(pd, dg.MultiPartitionsDefinition):
        return {dim.name: _partitions(dim.partitions_def) for dim in pd.partitions_defs}
    if isinstance(pd, dg.DynamicPartitionsDefinition):
        return f"dynamic: {pd.name}"
    if isinstance(pd, dg.StaticPartitionsDefinition):
        keys = pd.get_partition_keys()
        return (
            f"static: {keys[0]}..{keys[-1]} ({len(keys)})"
            if len(keys) > 4
            else f"static: {', '.join(keys)}"
        )
    return type(pd).__name__


def _tags(tags) -> dict:
    """Op tags with JSON values (the k8s config) parsed, so the file shows them as YAML."""
    out = {}
    for key, value in sorted(tags.items()):
        try:
            out[key] = json.loads(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def graph_snapshot(defs: dg.Definitions) -> dict:
    """What a reviewer should see change: per asset and for the jobs, schedules and sensors."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        definition = defs.resolve_assets_def(key)
        spec = definition.specs_by_key[key]
        op = definition.op if definition.is_executable else None
        retry = op.retry_policy if op is not None else None
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": _partitions(node.partitions_def),
            "backfill": str(node.backfill_policy) if node.backfill_policy else None,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "pool": op.pool if op is not None else None,
            "op_tags": _tags(op.tags) if op is not None else {},
            "tags": {
                k: v for k, v in sorted(spec.tags.items()) if not k.startswith("dagster/kind/")
            },
            "retry": f"{retry.max_retries} x {retry.delay}s {retry.backoff.value}"
            if retry
            else None,
            "automation": node.automation_condition.get_label()
            if node.automation_condition
            else None,
            "checks": sorted(c.name for c in definition.check_keys),
        }
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.jobs or []),
        "schedules": {s.name: s.cron_schedule for s in defs.schedules or []},
        "sensors": sorted(s.name for s in defs.sensors or []),
        "resources": sorted((defs.resources or {}).keys()),
    }


def test_asset_graph_matches_the_snapshot(all_defs):
    text = yaml.safe_dump(graph_snapshot(all_defs), sort_keys=False, width=120)
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.write_text(text)
        raise AssertionError(
            f"{SNAPSHOT.name} rewritten ({UPDATE_ENV} set): review the diff, commit it, rerun without"
        )
    assert SNAPSHOT.exists(), f"no {SNAPSHOT.name}: run with {UPDATE_ENV}=1 to write it"
    assert text == SNAPSHOT.read_text(), (
        f"the asset graph differs from {SNAPSHOT.name}; if intended, regenerate with "
        f"{UPDATE_ENV}=1 (see this test's docstring)"
    )
