"""Resolve a benchmark run without touching data: ``mer bench run --dry-run`` and the runner share it.

The preparation recipe is built in layers, each one overriding the one before:

1. ``Recipe()`` defaults;
2. the dataset's release (:mod:`mer.protocols.release`): raw frames get a face crop, cropped faces none;
3. the protocol's own wishes (``Protocol.extras["recipe"]``);
4. the model's size (frames and side it expects);
5. the model's training recipe (``official``: the dataset's sampler and short side, SPEC A.5b);
6. the user's flags (``--align``, ``--sampler``, ``--frames``, ``--image-size``, ``--resize-short``,
   ``--prep KEY=VALUE``).

Each field of the result records the layer that set it, so a user sees why a value is what it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mer.errors import OptionValueError
from mer.protocols.config import dataset_entry
from mer.protocols.faces import ALIGNERS, aligner_chain
from mer.protocols.flow import is_flow_setting
from mer.protocols.io import stable_hash
from mer.protocols.prepare import Recipe
from mer.protocols.protocol import PROTOCOLS, Protocol
from mer.protocols.release import Release, recorded_release
from mer.protocols.sampling import SAMPLERS
from mer.zoo.api import MODELS, ModelPlan, ModelSpec
from mer.zoo.options import check_options

# ``--image-size`` is the Recipe's ``size``; the other flags carry the field's own name.
PREP_ALIASES = {"image_size": "size", "image-size": "size", "resize-short": "resize_short"}
SELECTION = {
    "last": "last epoch (honest: the test fold is never looked at)",
    "oracle": "best UF1 epoch on the test fold (the authors' rule; marked † in tables)",
}


def prep_overrides(items: list[str] | None, **flags: Any) -> dict[str, Any]:
    """The user's preparation layer from ``--prep KEY=VALUE`` items and the named flags (None = unset).

    Raises:
        ValueError: an item without ``=``, an unknown key (the valid ones are listed) or a value of the
            wrong type.
    """
    names = {f.name: f for f in fields(Recipe)}
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise OptionValueError(f"--prep expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[PREP_ALIASES.get(key.strip(), key.strip())] = value.strip()
    out.update({PREP_ALIASES.get(k, k): v for k, v in flags.items() if v is not None})
    # Flow settings (flow=farneback, flow.lambda=0.3) are preparation too; RunConfig routes them.
    unknown = sorted(k for k in set(out) - set(names) if not is_flow_setting(k))
    if unknown:
        raise OptionValueError(
            f"unknown preparation key(s) {', '.join(unknown)}; keys: {', '.join(sorted(names))}, "
            "flow, flow_side, flow.PARAM (--image-size is size)"
        )
    for key, value in list(out.items()):
        if key in ("frames", "size", "resize_short", "pool"):
            if value in ("none", "None", "") and key == "resize_short":
                out[key] = None
                continue
            try:
                out[key] = int(value)
            except (TypeError, ValueError):
                raise OptionValueError(f"preparation {key} must be an integer, not {value!r}") from None
            if out[key] <= 0:
                raise OptionValueError(f"preparation {key} must be positive, not {out[key]}")
    return out


def check_recipe(recipe: Recipe, sources: dict[str, str]) -> None:
    """Refuse a preparation that cannot run, naming the field and the layer that set it."""

    def bad(key: str, why: str) -> OptionValueError:
        return OptionValueError(f"preparation {key}={getattr(recipe, key)!r} (set by {sources[key]}): {why}")

    if recipe.align not in ALIGNERS:
        raise bad("align", f"aligners: {', '.join(ALIGNERS.list())}")
    if recipe.sampler not in SAMPLERS:
        raise bad("sampler", f"samplers: {', '.join(SAMPLERS.list())}")
    if recipe.on_align_failure not in ("full-frame", "error"):
        raise bad("on_align_failure", "full-frame or error")
    if recipe.sampler == "keyframe" and recipe.frames < 3:
        raise bad("frames", "key-frame sampling keeps onset, apex and offset: at least 3")
    if recipe.pool > 1 and recipe.sampler != "uniform":
        raise bad("pool", "training candidates per segment go with --sampler uniform (TSN)")
    if recipe.resize_short is not None and recipe.resize_short < recipe.size:
        raise bad("resize_short", f"smaller than the crop size {recipe.size}")


def resolve_preparation(
    spec: ModelSpec,
    size: str,
    protocol: Protocol,
    release: Release,
    model_layer: dict[str, Any],
    overrides: dict[str, Any],
    recipe_name: str = "paper",
) -> tuple[Recipe, dict[str, str]]:
    """The preparation recipe and, per field, the layer that set it (see the module docstring)."""
    recipe = Recipe()
    sources = {f.name: "default" for f in fields(Recipe)}
    layers = (
        (f"release:{release.kind}", release.preparation()),
        ("protocol", protocol.extras.get("recipe", {})),
        (f"size:{size}", spec.recipe.get(size, {})),
        (f"recipe:{recipe_name}", model_layer),
        ("user", overrides),
    )
    for name, layer in layers:
        values = {k: v for k, v in layer.items() if v is not None or name == "user"}
        recipe = replace(recipe, **values)
        sources.update(dict.fromkeys(values, name))
    if recipe.pool > 1 and recipe.sampler != "uniform" and sources["pool"] != "user":
        # a layer above the one asking for TSN candidates chose another sampler: they are moot
        recipe = replace(recipe, pool=1)
        sources["pool"] = f"{sources['sampler']} (sampler {recipe.sampler})"
    check_recipe(recipe, sources)
    if recipe.pool > 1 and spec.inputs != "frames":
        raise OptionValueError(
            f"preparation pool={recipe.pool} (set by {sources['pool']}): model {spec.name} reads "
            f"{spec.inputs}, made from one frame per position; use pool=1"
        )
    return recipe, sources


@dataclass
class RunPlan:
    """A run resolved without touching data.

    Attributes:
        model: Model name.
        size: Resolved size.
        protocol: The protocol.
        release: The dataset's release (recorded by ``mer data add``, or assumed) and its evidence.
        added: Whether the dataset is added (``mer data add``).
        recipe: The preparation.
        sources: Preparation field → the layer that set it.
        model_plan: The model's resolved training recipe and init.
        run_id: The run folder name the same command finds and resumes.
        notes: What differs from what was asked (printed and recorded).
        flow: Flow models' optical flow (method and parameters, or the flow images), else None.
    """

    model: str
    size: str
    protocol: Protocol
    release: Release
    added: bool
    recipe: Recipe
    sources: dict[str, str]
    model_plan: ModelPlan
    run_id: str
    notes: list[str] = field(default_factory=list)
    select: str = "last"
    seed: int = 0
    folds: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    flow: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """What run.json keeps of the plan (everything that shapes the number, beside the recipe)."""
        return {
            "release": {"kind": self.release.kind, "evidence": self.release.evidence},
            "preparation_sources": self.sources,
            "training": self.model_plan.training,
            "init": self.model_plan.init,
            "selection": SELECTION.get(self.select, self.select),
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole plan, JSON-ready (``--dry-run --json``)."""
        entry = dataset_entry(self.protocol.dataset) or {}
        chain, unavailable = aligner_chain(self.recipe.align)
        return {
            "run_id": self.run_id,
            "model": self.model,
            "size": self.size,
            "protocol": self.protocol.name,
            "protocol_version": self.protocol.version,
            "task": self.protocol.task,
            "classes": list(self.protocol.classes),
            "dataset": {
                "name": self.protocol.dataset,
                "added": self.added,
                "root": entry.get("root"),
                "release": self.release.kind,
                "evidence": self.release.evidence,
            },
            "preparation": asdict(self.recipe),
            "preparation_sources": self.sources,
            "preparation_key": stable_hash(self.recipe.key()),
            "alignment": {"asked": self.recipe.align, "chain": chain, "unavailable": unavailable},
            "training": self.model_plan.training,
            "init": self.model_plan.init,
            "options": self.options,
            "select": self.select,
            "selection": SELECTION.get(self.select, self.select),
            "seed": self.seed,
            "folds": self.folds,
            "notes": self.notes,
            "flow": self.flow,
        }


def plan_run(config: Any, run_id: str | None = None) -> RunPlan:
    """Resolve ``config`` (a :class:`~mer.protocols.runner.RunConfig`) without reading any frame.

    Raises:
        RegistryError: unknown model or protocol.
        ValueError: a size, selection rule, option, init or preparation the model cannot use.
    """
    protocol = PROTOCOLS.get(config.protocol)
    spec = MODELS.get(config.model)
    size = spec.check_size(config.size)
    check_options(spec, config.options)  # type and range of every -o value, before anything is written
    if spec.task != protocol.task:
        raise OptionValueError(
            f"model {spec.name} does {spec.task} but protocol {protocol.name} is {protocol.task}"
        )
    if config.select not in SELECTION:
        raise OptionValueError(f"--select must be 'last' or 'oracle', not {config.select!r}")
    options = dict(config.options)
    if spec.plan is not None:
        model_plan = spec.plan(size=size, protocol=protocol.name, options=options)
    else:
        model_plan = ModelPlan(training={"recipe": options.get("recipe")} if "recipe" in options else {})
    release, added = recorded_release(protocol.dataset)
    recipe, sources = resolve_preparation(
        spec,
        size,
        protocol,
        release,
        model_plan.preparation,
        prep_overrides(None, **config.recipe),
        options.get("recipe", "paper"),
    )
    notes = list(model_plan.notes)
    if not added and protocol.dataset != "synthme":
        notes.append(release.evidence)
    chain, unavailable = aligner_chain(recipe.align)
    if unavailable:
        notes.append(
            f"--align {recipe.align} cannot run here ({unavailable}): {chain[0]} will crop every clip"
        )
    # The preparation enters the run id once it differs from what the model's size alone asks for, so
    # a raw and a cropped release, or another --prep, never resume each other's run.
    plain = replace(Recipe(), **spec.recipe.get(size, {}))
    prep = None if recipe == plain else stable_hash(recipe.key(), 8)
    return RunPlan(
        model=spec.name,
        size=size,
        protocol=protocol,
        release=release,
        added=added,
        recipe=recipe,
        sources=sources,
        model_plan=model_plan,
        run_id=run_id or config.run_id(size, prep),
        notes=notes,
        select=config.select,
        seed=config.seed,
        folds=config.folds,
        options=options,
        flow=_flow_plan(spec, protocol, config),
    )


def _flow_plan(spec: ModelSpec, protocol: Protocol, config: Any) -> dict[str, Any] | None:
    """The optical flow a flow model will read: the registered flow images, or the method to compute."""
    if spec.inputs != "flow":
        return None
    from mer.protocols.flow_images import LAYOUT, registered_spec

    images = registered_spec(protocol.dataset)
    if images is not None:
        return {"method": LAYOUT, "folder": images[0]["root"], **images[1].to_json()}
    return config.flow_config().to_json()


def format_plan(plan: dict[str, Any]) -> str:
    """The plan of :meth:`RunPlan.to_dict` as plain text, one value per line, sources in brackets."""
    ds = plan["dataset"]
    lines = [
        f"run          {plan['run_id']}",
        f"model        {plan['model']} (size {plan['size']})",
        f"protocol     {plan['protocol']} v{plan['protocol_version']}: {', '.join(plan['classes'])}",
        f"dataset      {ds['name']}: {'added, ' + str(ds['root']) if ds['added'] else 'not added'}",
        f"release      {ds['release']} ({ds['evidence']})",
        "preparation",
    ]
    for key, value in plan["preparation"].items():
        lines.append(f"  {key:<17} {value!s:<12} [{plan['preparation_sources'][key]}]")
    al = plan["alignment"]
    lines.append(f"  aligners          {' → '.join(al['chain'])} (then the full frame, reported)")
    lines.append("training")
    for key, value in plan["training"].items():
        lines.append(f"  {key:<17} {json_text(value)}")
    if plan.get("flow"):
        lines.append(f"flow         {json_text(plan['flow'])}")
    init = plan.get("init")
    if init:
        lines.append(f"init         {init['init']}")
        for key in ("path", "sha256", "bytes", "from", "note"):
            if init.get(key) is not None:
                lines.append(f"  {key:<17} {json_text(init[key])}")
    lines.append(f"options      {json_text(plan['options'])}")
    lines.append(f"selection    {plan['selection']}")
    lines.append(f"seed         {plan['seed']}; folds {plan['folds'] or 'all'}")
    lines += [f"note         {n}" for n in plan["notes"]]
    return "\n".join(lines)


def json_text(value: Any) -> str:
    """A value as compact JSON (dicts and lists), or as is."""
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
