"""Sphinx extension: the scene config reference, generated from the pydantic schema.

``.. geohm-config-reference::`` walks :class:`geohm.config.SceneConfig` and every block
nested in it (``samples``, ``risk``, ``accumulation.deposition``, a STAC ``landsat``,
...) through ``model_fields``, and writes one section per block: each key with its
type, default, constraints and description (the description strings of the schema
carry the units). It runs on every build, so the page cannot drift from the code.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from docutils import nodes
from geohm_tables import Cell, always_reread, literal, plain, table
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Constraint attributes of annotated_types metadata, as shown in the table.
_BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


@dataclass
class Block:
    """One pydantic model of the schema and the key paths where it is used."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The first key path (``""`` for the top level)."""
        return self.paths[0]

    @property
    def anchor(self) -> str:
        """The HTML id of its section."""
        slug = self.path.replace(".", "-").replace("<", "").replace(">", "") or "top-level"
        return f"config-{slug}"


def _models_in(annotation: Any, path: str) -> list[tuple[type[BaseModel], str]]:
    """Every pydantic model in ``annotation``, with the key path it takes below ``path``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, path)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0], path)
    if origin in (typing.Union, types.UnionType):
        return [m for a in args for m in _models_in(a, path)]
    if origin in (list, tuple, set):
        return [m for a in args for m in _models_in(a, f"{path}[]")]
    if origin is dict and len(args) == 2:
        return _models_in(args[1], f"{path}.<name>")
    return []


def walk(root: type[BaseModel]) -> list[Block]:
    """The blocks of ``root`` in breadth-first order, each with the paths it is used at.

    Parameters
    ----------
    root : type of pydantic.BaseModel
        The schema (``SceneConfig``).

    Returns
    -------
    list of Block
        ``root`` first (path ``""``), then every nested model once.
    """
    blocks: dict[type[BaseModel], Block] = {root: Block(root, [""])}
    queue: list[tuple[type[BaseModel], str]] = [(root, "")]
    while queue:
        model, prefix = queue.pop(0)
        for name, info in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            for sub, path in _models_in(info.annotation, key):
                if sub in blocks:
                    if path not in blocks[sub].paths:
                        blocks[sub].paths.append(path)
                    continue
                blocks[sub] = Block(sub, [path])
                queue.append((sub, path))
    return list(blocks.values())


def _type_text(annotation: Any, blocks: dict[type[BaseModel], Block]) -> list[nodes.Node]:
    """The annotation as inline nodes; nested blocks link to their section."""
    if annotation is type(None):
        return [nodes.Text("null")]
    if annotation is Any:
        return [nodes.Text("any")]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        block = blocks[annotation]
        ref = nodes.reference("", "", refid=block.anchor, internal=True)
        ref += nodes.Text(f"block {annotation.__name__}")
        return [ref]
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return [nodes.Text("path")]
    if isinstance(annotation, type):
        return [nodes.Text(annotation.__name__)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0], blocks)
    if origin is typing.Literal:
        if len(args) == 1:
            return [literal(str(args[0]))]
        out: list[nodes.Node] = [nodes.Text("one of ")]
        for i, a in enumerate(args):
            if i:
                out.append(nodes.Text(", "))
            out.append(literal(str(a)))
        return out
    if origin in (typing.Union, types.UnionType):
        out = []
        for i, a in enumerate(args):
            if i:
                out.append(nodes.Text(" | "))
            out.extend(_type_text(a, blocks))
        return out
    if origin in (list, tuple, set):
        return (
            [nodes.Text("list of "), *_type_text(args[0], blocks)] if args else [nodes.Text("list")]
        )
    if origin is dict and len(args) == 2:
        return [
            nodes.Text("mapping "),
            *_type_text(args[0], blocks),
            nodes.Text(" → "),
            *_type_text(args[1], blocks),
        ]
    return [nodes.Text(str(annotation))]


def yaml_value(value: Any) -> str:
    """A default as it would be written in the scene YAML (flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple | set):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return "{}"
    return str(value)


def _default(info: FieldInfo, blocks: dict[type[BaseModel], Block]) -> Cell:
    if info.is_required():
        return [nodes.strong("", "required")]
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        ref = nodes.reference("", "", refid=blocks[type(value)].anchor, internal=True)
        ref += nodes.Text("its keys' defaults")
        return [ref]
    if value is PydanticUndefined:  # pragma: no cover - is_required covers it
        return "required"
    return [literal(yaml_value(value))]


def _constraints(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in _BOUNDS.items():
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sign} {v}")
        for attr, sign in (("min_length", "≥"), ("max_length", "≤")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"length {sign} {v}")
    return ", ".join(parts)


def _summary(model: type[BaseModel]) -> str:
    """The first paragraph of the block's docstring."""
    doc = (model.__doc__ or "").strip()
    return plain(" ".join(doc.split("\n\n", 1)[0].split()))


class ConfigReference(SphinxDirective):
    """``.. geohm-config-reference::``: every key of ``SceneConfig``, block by block."""

    has_content = False
    required_arguments = 0

    def run(self) -> list[nodes.Node]:
        """One section per schema block, one table row per key."""
        from geohm.config import SceneConfig

        always_reread(self.env, self.env.docname)
        blocks = walk(SceneConfig)
        by_model = {b.model: b for b in blocks}
        out: list[nodes.Node] = []
        for block in blocks:
            title = f"{block.path}" if block.path else "Top level"
            section = nodes.section(ids=[block.anchor], names=[block.anchor])
            self.state.document.note_explicit_target(section)
            heading = nodes.title()
            heading += literal(title) if block.path else nodes.Text(title)
            if block.path:
                heading += nodes.Text(f" ({block.model.__name__})")
            section += heading
            section += nodes.paragraph(text=_summary(block.model))
            if len(block.paths) > 1:
                para = nodes.paragraph(text="Also used at: ")
                for i, p in enumerate(block.paths[1:]):
                    if i:
                        para += nodes.Text(", ")
                    para += literal(p)
                para += nodes.Text(" (the same keys below each).")
                section += para
            rows: list[list[Cell]] = []
            for name, info in block.model.model_fields.items():
                key = f"{block.path}.{name}" if block.path else name
                rows.append(
                    [
                        [literal(key)],
                        _type_text(info.annotation, by_model),
                        _default(info, by_model),
                        _constraints(info),
                        plain(info.description or ""),
                    ]
                )
            section += table(
                ["key", "type", "default", "constraints", "description (units)"],
                rows,
                widths=[22, 22, 16, 10, 30],
                classes=["geohm-config"],
            )
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``geohm-config-reference`` directive."""
    app.add_directive("geohm-config-reference", ConfigReference)
    app.setup_extension("geohm_tables")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
