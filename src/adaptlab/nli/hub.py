"""A task's dataset from the Hugging Face hub (``datasets``), as raw tables per split.

``datasets`` is imported only here and only when the hub is actually used: reading local files never needs it
(machines that only read local files may not have it installed).

The hub is probed with a short timeout first, because ``datasets`` otherwise retries for ~25 s before giving up
on a machine without internet. With ``HF_HUB_OFFLINE=1`` the probe is skipped and ``datasets`` reads its local
cache only.
"""

from __future__ import annotations

import pandas as pd

from adaptlab.core.sources import hub_unreachable_reason
from adaptlab.errors import AdaptlabError, first_line
from adaptlab.nli.readers import RawTable
from adaptlab.nli.tasks import TaskSpec


def hub_tables(task: TaskSpec, wanted: set[str] | None, quiet: bool) -> dict[str, RawTable]:
    """The task's labelled hub splits under our split names: train, and the eval splits in ``wanted`` (None: all).

    One-line AdaptlabError when the hub fails or a wanted split does not exist.
    """
    if task.hub_id is None:
        raise AdaptlabError(f"task {task.name} has no hub dataset; pass --data PATH to its files")
    raw = _load_hub(task.hub_id, task.hub_config, quiet)
    ours = {hub_name: our_name for hub_name, our_name in task.hub_splits if hub_name in raw}
    if "train" not in ours.values():
        raise AdaptlabError(f"{task.hub_source()} has no train split; found: {', '.join(raw)}")
    eval_names = [name for name in ours.values() if name != "train"]
    if wanted is not None and not wanted <= set(eval_names):
        raise AdaptlabError(f"eval split {', '.join(sorted(wanted - set(eval_names)))} not found in "
                            f"{task.hub_source()}; available: {', '.join(eval_names)}")
    return {our: RawTable(raw[hub_name], f"{task.hub_source()} [{hub_name}]") for hub_name, our in ours.items()
            if our == "train" or wanted is None or our in wanted}


def _load_hub(hub_id: str, config_name: str | None, quiet: bool) -> dict[str, pd.DataFrame]:
    """All splits of a hub dataset as raw pandas tables; one-line AdaptlabError when the hub fails."""
    try:
        import datasets
    except ImportError:
        raise AdaptlabError(f"loading {hub_id} from the Hugging Face hub needs the datasets package "
                            "(pip install 'adaptlab[nli]'), or pass --data PATH to local files") from None
    where = hub_id + (f" ({config_name})" if config_name else "")
    offline = bool(datasets.config.HF_HUB_OFFLINE)
    if not offline:
        reason = hub_unreachable_reason()
        if reason:
            raise AdaptlabError(f"cannot load {where}: the Hugging Face hub is unreachable ({reason}; "
                                "HF_HUB_OFFLINE=1 uses a copy in the Hugging Face cache)")
    bars_were_off = datasets.utils.are_progress_bars_disabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        dataset = datasets.load_dataset(hub_id, config_name) if config_name else datasets.load_dataset(hub_id)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; all mean "the hub gave us nothing"
        cache_only = " (HF_HUB_OFFLINE is set, so only the local cache was tried)" if offline else ""
        raise AdaptlabError(f"cannot load {where} from the Hugging Face hub{cache_only}: "
                            f"{type(exc).__name__}: {first_line(exc)}") from None
    finally:
        if quiet and not bars_were_off:
            datasets.enable_progress_bars()
    return {split: part.to_pandas() for split, part in dataset.items()}
