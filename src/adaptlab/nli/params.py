"""Trainable vs total parameters per method, from the model config alone (meta device: no weights, no memory).

Definitions (the project's, used everywhere):

- *total*: parameters of the classification model being adapted (base encoder + its task head); for
  roberta-large with a 3-way head that is 354,310,144 + 1,052,675 = 355,362,819.
- *trainable*: parameters that receive gradients. For LoRA: the A/B matrices plus everything between the encoder's
  last layer and the logits (BERT's pooler + classifier; RoBERTa's classifier.dense + out_proj: RoBERTa's
  sequence classifier has no pooler), unless ``head="peft"`` keeps only PEFT's own ``classifier``/``score``.

PEFT's ``print_trainable_parameters`` counts differently: its "all params" also contains the LoRA A/B matrices
and the frozen original of the head that ``modules_to_save`` keeps next to the trained copy; the report shows that
number too, and why it differs.
"""

from __future__ import annotations

from adaptlab.nli.lora import TARGET_PRESETS
from adaptlab.nli.methods import MethodConfig, parameter_counts, resolved_top_layers
from adaptlab.nli.structure import (encoder_layers, head_module_names, module_parameter_count,
                                    modules_above_encoder)


def params_report(model: str, methods: list[MethodConfig], *, num_labels: int = 3) -> dict:
    """Counts for each method on ``model`` (a preset, hub id, config.json or model folder), as plain data."""
    from adaptlab.nli.models import build_meta_model, load_model_config

    config = load_model_config(model, num_labels)
    plain = build_meta_model(model, MethodConfig(method="full"), num_labels=num_labels)
    head = module_parameter_count(plain, head_module_names(plain))
    above = modules_above_encoder(plain)
    total = parameter_counts(plain).total
    n_layers = len(encoder_layers(plain)[1])
    rows = []
    for method in methods:
        adapted = build_meta_model(model, method, num_labels=num_labels)
        counts = parameter_counts(adapted)
        row = {
            "method": method.method,
            "setting": _setting(method, n_layers, adapted),
            "config": method.to_dict(),
            "trainable": counts.trainable,
            "total": counts.total,
            "trainable_percent": round(counts.trainable_percent, 4),
        }
        if method.method == "lora":
            trained_head = counts.trainable - counts.adapters
            row.update(trained_head=trained_head,
                       trained_head_modules=_trained_head_modules(method, above, head_module_names(plain)),
                       lora_params=counts.adapters, with_adapters=counts.with_adapters,
                       peft_all_params=counts.peft_all, peft_head_copy=counts.head_copies)
        rows.append(row)
    return {
        "model": model,
        "source": config._name_or_path,
        "model_type": config.model_type,
        "layers": n_layers,
        "hidden_size": getattr(config, "hidden_size", None),
        "num_labels": num_labels,
        "total": total,
        "encoder": total - head,
        "head": head,
        "above_encoder": {name: module_parameter_count(plain, [name]) for name in above},
        "device": "meta (shapes only; no weights read)",
        "rows": rows,
    }


def _trained_head_modules(method: MethodConfig, above: list[str], heads: list[str]) -> list[str]:
    if method.head == "peft":
        return [name for name in heads if name in ("classifier", "score")]
    return above + heads


def _setting(method: MethodConfig, n_layers: int, adapted) -> str:
    if method.method == "lora" and method.targets[0] in TARGET_PRESETS:  # name the layers the preset found
        found = ",".join(sorted(adapted.peft_config["default"].target_modules))
        return method.describe().replace(f"targets={method.targets[0]}", f"targets={method.targets[0]} ({found})")
    if method.method == "partial":
        return f"top {resolved_top_layers(method, n_layers)} of {n_layers} layers + head"
    return method.describe()


def format_params(report: dict) -> str:
    """The report as an aligned text table plus one explicit line per method and the PEFT note."""
    lines = [
        f"model   {report['model']} ({report['source']}; {report['model_type']}, {report['layers']} layers, "
        f"hidden {report['hidden_size']}, {report['num_labels']} labels), built on the meta device: no weights read",
        f"total   {report['total']:,} = encoder {report['encoder']:,} + classification head {report['head']:,}"
        + "".join(f" (encoder includes {name} {n:,}, between the last layer and the head)"
                  for name, n in report["above_encoder"].items()),
        "",
    ]
    table = [("method", "trainable", "total", "% trainable", "setting")]
    table += [(r["method"], f"{r['trainable']:,}", f"{r['total']:,}", f"{r['trainable_percent']:.2f}%", r["setting"])
              for r in report["rows"]]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        lines.append("  ".join(cell.ljust(w) if i in (0, 4) else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    lines.append("")
    for r in report["rows"]:
        lines.append(f"{r['method']}: {r['trainable']:,} trainable of {r['total']:,} total "
                     f"({r['trainable_percent']:.2f}%)")
        if r["method"] == "lora":
            lines += [
                f"  = LoRA A/B {r['lora_params']:,} + {' + '.join(r['trained_head_modules'])} "
                f"{r['trained_head']:,} (everything trained between the last encoder layer and the logits).",
                f"  With the adapters attached the model holds {r['with_adapters']:,} (total + LoRA A/B); "
                f"merged, {r['total']:,} again.",
                f"  PEFT's print_trainable_parameters() says all params {r['peft_all_params']:,}: it also counts "
                f"the frozen originals of those head modules ({r['peft_head_copy']:,}) that modules_to_save keeps "
                "beside the trained copies.",
            ]
    return "\n".join(lines)
