"""Loading the farm file: read, parse, check every table and every cross-field rule, once.

`load_config(path)` reports every issue in the file at once (`ConfigError`), and returns the
frozen `FarmConfig` with its plain `desired` state already computed: past this module,
nothing reads the TOML or a file it names again.
"""

# No `from __future__ import annotations` here: pydantic would then eval every annotation
# string at start-up, a cost `farm validate` pays on each run.
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from buildkit_farm import encoding
from buildkit_farm.errors import ConfigError, ConfigIssue
from buildkit_farm.farmfile import limits
from buildkit_farm.farmfile.credentials import credential_issues
from buildkit_farm.farmfile.desired import BuilderSettings, Desired, NodeSettings, TLSFiles, pools_of
from buildkit_farm.farmfile.issues import issue_of
from buildkit_farm.farmfile.model import (
    BakeConfig,
    BuilderConfig,
    FarmConfig,
    NodeConfig,
    TargetConfig,
    _Model,
)
from buildkit_farm.farmfile.rules import DEFAULT_DOCKERFILE, check_farm
from buildkit_farm.farmfile.section import Section
from buildkit_farm.farmfile.targets import target_spec
from buildkit_farm.farmfile.toml import tomllib
from buildkit_farm.farmfile.words import allowed_hint, key_name, quote, syntax_issue, table_labels, toml_type


def load_config(path: str | Path) -> FarmConfig:
    """Read, check and return the farm file; `ConfigError` lists every issue at once."""
    file = Path(path)
    shown = str(path)
    try:
        data = limits.read_bounded(file)
    except limits.TooBig as err:
        raise ConfigError(file=shown, issues=[err.issue]) from None
    except FileNotFoundError:
        raise _error(
            shown, "", "file not found", "create one with `farm init`, or point to it with -f FILE or $FARM_FILE"
        ) from None
    except IsADirectoryError:
        raise _error(
            shown, "", "is a folder, not a farm file", "pass the farm file itself, e.g. -f ./multiarch.toml"
        ) from None
    except OSError as err:
        raise _error(shown, "", f"cannot be read: {err.strerror or err}", None) from None
    try:
        text = encoding.decode(data, file.name)
    except encoding.NotUTF8 as err:
        issue = ConfigIssue("", err.message, err.hint, line=err.line)
        raise ConfigError(file=shown, issues=[issue]) from None
    doc = _parse(text, shown)
    base = os.path.dirname(os.path.abspath(file))
    return _build(doc, file=Path(os.path.abspath(file)), shown=shown, base=base)


def _parse(text: str, shown: str) -> dict[str, Any]:
    """TOML within the bounds of `limits`: checked before parsing and right after."""
    issue = limits.check_text(text)
    if issue is not None:
        raise ConfigError(file=shown, issues=[issue])
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(file=shown, issues=[limits.stray_bom(text, syntax_issue(err))]) from None
    except RecursionError:
        raise _error(shown, "", "TOML syntax error: nesting too deep", None) from None
    too_big = limits.check_document(doc)
    if too_big:
        raise ConfigError(file=shown, issues=too_big)
    return doc


def load_config_text(text: str, *, base: str | Path = ".", name: str = "<text>") -> FarmConfig:
    """Check a farm file given as text (paths resolve against `base`); for tests and tools."""
    doc = _parse(text.removeprefix("\ufeff"), name)  # as `encoding.decode` drops a UTF-8 BOM
    base = os.path.abspath(base)
    return _build(doc, file=Path(base) / name, shown=name, base=base)


def _error(shown: str, path: str, message: str, hint: str | None) -> ConfigError:
    return ConfigError(file=shown, issues=[ConfigIssue(path=path, message=message, hint=hint)])


def _build(doc: dict[str, Any], *, file: Path, shown: str, base: str) -> FarmConfig:
    issues: list[ConfigIssue] = []
    context = {"base": base}

    credentials: list[ConfigIssue] = []
    credential_paths = credential_issues(doc, credentials)

    allowed = ("builder", "node", "target", "bake")
    for key in doc:
        if key not in allowed:
            if key in credential_paths:
                continue
            issues.append(ConfigIssue(key_name(key), "unknown key", allowed_hint(key, allowed)))

    if not doc:
        issues.append(
            ConfigIssue(
                "", "the file is empty", "a farm file needs a [builder] table with a name, and at least one [[node]]"
            )
        )
        raise ConfigError(file=shown, issues=issues)

    builder = Section("builder", doc.get("builder"))
    if "builder" not in doc:
        issues.append(ConfigIssue("builder", "the [builder] table is required", 'add [builder] with name = "my-farm"'))
    elif not isinstance(builder.raw, dict):
        issues.append(
            ConfigIssue("builder", f"expected a table, got {toml_type(builder.raw)}", "write [builder] on its own line")
        )
    else:
        builder.model = _validate(BuilderConfig, builder, context, issues, credential_paths)

    nodes = _array_of_tables(doc, "node", issues)
    if "node" in doc and not nodes and isinstance(doc.get("node"), list):
        issues.append(
            ConfigIssue("node", "at least one [[node]] is required", "add a [[node]] with a name and an endpoint")
        )
    elif "node" not in doc:
        issues.append(
            ConfigIssue(
                "node",
                "at least one [[node]] is required",
                'add [[node]] with name, endpoint = "unix:///var/run/docker.sock" and platforms',
            )
        )
    for node in nodes:
        node.model = _validate(NodeConfig, node, context, issues, credential_paths)

    targets = _array_of_tables(doc, "target", issues)
    for target in targets:
        target.model = _validate(TargetConfig, target, context, issues, credential_paths)

    check_farm(builder, nodes, targets, issues)
    bake = _bake_section(doc, context, issues, credential_paths)
    issues.extend(credentials)
    if issues:
        raise ConfigError(file=shown, issues=_dedupe(issues))
    node_models = tuple(n.model for n in nodes)
    complete = tuple(_complete_target(t.model) for t in targets)
    desired = desire(builder.model, node_models, complete, file=file, issues=issues)
    if issues:
        raise ConfigError(file=shown, issues=_dedupe(issues))
    # Every part is validated already: construct without validating them again.
    config = FarmConfig.model_construct(
        file=file, builder=builder.model, nodes=node_models, targets=complete, bake=bake
    )
    object.__setattr__(config, "_desired", desired)
    return config


def _bake_section(
    doc: dict[str, Any], context: dict, issues: list[ConfigIssue], skip: set[str]
) -> Optional[BakeConfig]:
    """The `[bake]` table checked on its own; its targets are resolved later (farmfile.bake)."""
    if "bake" not in doc:
        return None
    section = Section("bake", doc["bake"])
    if not isinstance(section.raw, dict):
        issues.append(
            ConfigIssue("bake", f"expected a table, got {toml_type(section.raw)}", "write [bake] on its own line")
        )
        return None
    model = _validate(BakeConfig, section, context, issues, skip)
    return model if section.valid else None


def validate_section(model: type[_Model], section: Section, base: str | Path, issues: list[ConfigIssue]) -> Any:
    """Validate one table from outside the farm file (a resolved bake target) like a file's own table."""
    return _validate(model, section, {"base": str(base)}, issues, set())


def complete_target(t: TargetConfig) -> TargetConfig:
    """A validated target with the defaults loading fills in (platforms from dockerfiles, dockerfile)."""
    return _complete_target(t)


def _array_of_tables(doc: dict[str, Any], key: str, issues: list[ConfigIssue]) -> list[Section]:
    raw = doc.get(key)
    if raw is None:
        return []
    if isinstance(raw, dict):
        issues.append(
            ConfigIssue(key, "expected an array of tables", f"write [[{key}]] (double brackets), one per {key}")
        )
        return []
    if not isinstance(raw, list):
        issues.append(
            ConfigIssue(
                key,
                f"expected an array of tables, got {toml_type(raw)}",
                f"write [[{key}]] (double brackets), one per {key}",
            )
        )
        return []
    sections = []
    for label, item in zip(table_labels(key, raw), raw):
        if not isinstance(item, dict):
            issues.append(
                ConfigIssue(
                    label,
                    f"expected a table, got {toml_type(item)}",
                    f"write [[{key}]] (double brackets), one per {key}",
                )
            )
            continue
        sections.append(Section(label, item))
    return sections


def _validate(model: type[_Model], section: Section, context: dict, issues: list[ConfigIssue], skip: set[str]) -> Any:
    """Validate one table; on errors, also validate it without the bad keys.

    The partial model lets the cross-field rules run on the rest of the table (they skip
    rules that involve a dropped key), so one bad tag does not hide a missing Dockerfile.
    """
    try:
        return model.model_validate(section.raw, context=context)
    except ValidationError as err:
        errors: list[dict[str, Any]] = [dict(e) for e in err.errors(include_url=False)]
    section.valid = False
    for error in errors:
        issue = issue_of(section.label, model, error, section.raw)
        if issue.path not in skip:
            issues.append(issue)
    bad = {error["loc"][0] for error in errors if error["loc"]}
    if any(not error["loc"] for error in errors) or not all(isinstance(key, str) for key in bad):
        return None
    partial = {key: value for key, value in section.raw.items() if key not in bad}
    # An array that is wrong only in some items keeps the others: a typo in one platform
    # must not hide that another is pinned twice.
    for key, kept in _kept_items(section.raw, errors).items():
        partial[key] = [section.raw[key][index] for index in kept]
        section.kept[key] = kept
        bad.discard(key)
    name = section.raw.get("name")
    if "name" in bad:
        partial["name"] = "placeholder-name"
    try:
        found = model.model_validate(partial, context=context)
    except ValidationError:
        return None
    section.dropped = frozenset(bad)
    if "name" in bad and isinstance(name, str):
        found = found.model_copy(update={"name": name})
    return found


def _kept_items(raw: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """For each array whose errors are all in items, the indices of its good items (if any)."""
    bad_items: dict[str, set[int]] = {}
    whole: set[Any] = set()
    for error in errors:
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(raw.get(loc[0]), list):
            bad_items.setdefault(loc[0], set()).add(loc[1])
        else:
            whole.add(loc[0])
    kept = {}
    for key, bad in bad_items.items():
        good = tuple(index for index in range(len(raw[key])) if index not in bad)
        if key not in whole and good:
            kept[key] = good
    return kept


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen, out = set(), []
    for issue in issues:
        marker = (issue.path, issue.message)
        if marker not in seen:
            seen.add(marker)
            out.append(issue)
    return out


def _complete_target(t: TargetConfig) -> TargetConfig:
    update: dict[str, Any] = {}
    if not t.platforms and t.dockerfiles:
        update["platforms"] = tuple(t.dockerfiles)
    if t.dockerfile is None and not t.dockerfiles and (t.platforms or not t.sources):
        update["dockerfile"] = t.context / DEFAULT_DOCKERFILE
    return t.model_copy(update=update) if update else t


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the farm file, for editors (taplo / Even Better TOML)."""
    schema = FarmConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "buildkit-farm farm file (multiarch.toml)"
    schema.setdefault("required", [])
    if "builder" not in schema["required"]:
        schema["required"].append("builder")
    schema["properties"].pop("file", None)
    return _without_null(schema)


def _without_null(node: Any) -> Any:
    """TOML has no null: drop `{"type": "null"}` from optional keys and their null defaults."""
    if isinstance(node, list):
        return [_without_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _without_null(value) for key, value in node.items()}
    if "anyOf" in out:
        kept = [item for item in out["anyOf"] if item != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
    if "default" in out and out["default"] is None:
        del out["default"]
    return out


# --------------------------------------------------------------------------- the desired state
def desire(
    builder: BuilderConfig,
    nodes: Iterable[NodeConfig],
    targets: Iterable[TargetConfig] = (),
    *,
    file: Path,
    issues: list[ConfigIssue],
) -> Desired:
    """The desired state of a validated file; a buildkitd config that cannot be read is an issue."""
    settings = tuple(_node_settings(builder, node, issues) for node in nodes)
    pools = pools_of(settings)
    specs = tuple(target_spec(t, pools) for t in targets)
    return Desired(file=file, builder=BuilderSettings(builder.name, builder.driver), nodes=settings, targets=specs)


def _node_settings(builder: BuilderConfig, node: NodeConfig, issues: list[ConfigIssue]) -> NodeSettings:
    driver = builder.driver
    opts = dict(builder.driver_opts)
    opts.update(node.driver_opts)
    if builder.buildkit_image and driver != "remote":
        opts.setdefault("image", builder.buildkit_image)
    if driver == "kubernetes":
        if node.nodeselector:
            opts["nodeselector"] = ",".join(f"{k}={v}" for k, v in sorted(node.nodeselector.items()))
        if node.replicas is not None:
            opts["replicas"] = str(node.replicas)
    tls = TLSFiles(node.tls.ca, node.tls.cert, node.tls.key) if node.tls is not None else None
    if driver == "remote" and tls is not None:
        for kind, path in tls.files():
            opts["cacert" if kind == "ca" else kind] = str(path)
    if driver == "remote":
        context, endpoint, owns = node.endpoint or "", node.endpoint, False
    elif driver == "kubernetes":
        context, endpoint, owns = "", None, False
    elif node.context is not None:
        context, endpoint, owns = node.context, None, False
    else:
        context, endpoint, owns = node.name, node.endpoint, True
    own = node.buildkitd_config is not None
    where = f"node {quote(node.name)}.buildkitd_config" if own else "builder.buildkitd_config"
    text = _buildkitd_text(node.buildkitd_config if own else builder.buildkitd_config, where, issues)
    return NodeSettings(
        name=node.name,
        context=context,
        endpoint=endpoint,
        tls=tls,
        owns_context=owns,
        platforms=node.platforms,
        driver=driver,
        driver_opts=tuple(sorted(opts.items())),
        buildkitd_flags=node.buildkitd_flags if node.buildkitd_flags is not None else builder.buildkitd_flags,
        buildkitd_config=text,
    )


def _buildkitd_text(config: Path | dict[str, Any] | None, where: str, issues: list[ConfigIssue]) -> str | None:
    if config is None:
        return None
    if isinstance(config, dict):
        import tomli_w  # small, but only needed here

        return tomli_w.dumps(config)
    try:
        return encoding.decode(limits.read_bounded(config), config.name)
    except encoding.NotUTF8 as err:
        issues.append(ConfigIssue(where, f"{config} {err.message}", err.hint))
        return None
    except limits.TooBig as err:
        issues.append(ConfigIssue(where, f"{config} {err.issue.message}", err.issue.hint))
        return None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        issues.append(
            ConfigIssue(where, f"cannot read {config}: {reason}", "paths are relative to the farm file's folder")
        )
        return None
