"""Finding the catalog entry for a name as a job gives it (``match_base_model``), and how it was found.

Exact Hugging Face id, then the alias table, then the key of ``model_names.name_key`` for each name a reference
contains, then the family and size a derivative's name declares (``match_family_size``). The data is
``flopsmeter.domain.catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flopsmeter.domain.catalog import BASE_MODELS, BaseModel
from flopsmeter.domain.model_names import MatchMethod, candidate_names, name_key, size_tokens


@dataclass(frozen=True)
class CatalogMatch:
    """A catalog entry found for a name, and how (recorded with the classification)."""

    model: BaseModel
    method: MatchMethod
    matched: str  # the name, or the path segment, that matched


def _index(
    models: Iterable[BaseModel],
) -> tuple[dict[str, BaseModel], dict[str, BaseModel], dict[tuple[str, ...], BaseModel]]:
    """Three lookup tables; a name or key that would point at two different models is a data error."""
    ids: dict[str, BaseModel] = {}
    aliases: dict[str, BaseModel] = {}
    keys: dict[tuple[str, ...], BaseModel] = {}

    def put(table: dict, key: object, model: BaseModel) -> None:  # type: ignore[type-arg]
        other = table.setdefault(key, model)
        if other is not model:
            raise ValueError(f"catalog name {key!r} would match both {other.model_id} and {model.model_id}")

    for model in models:
        put(ids, model.model_id.lower(), model)
        for name in (model.model_id.split("/", 1)[-1], *model.aliases):
            put(aliases, name.lower(), model)
            put(keys, name_key(name), model)
    return ids, aliases, keys


_IDS, _ALIASES, _KEYS = _index(BASE_MODELS)


def _families(keys: dict[tuple[str, ...], BaseModel]) -> tuple[tuple[tuple[str, ...], tuple[str, ...], BaseModel], ...]:
    """(family tokens, size tokens, entry) of each catalog key that states a size: ``llama 3 1`` + ``405b``."""
    found = []
    for key, model in keys.items():
        sizes = size_tokens(key)
        if sizes:
            found.append((key[: key.index(sizes[0])], sizes, model))
    return tuple(found)


_FAMILIES = _families(_KEYS)


def _contains(key: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(key[i : i + len(part)] == part for i in range(len(key) - len(part) + 1))


def match_family_size(names: Iterable[str]) -> CatalogMatch | None:
    """The one entry whose family (the tokens before its size) and every size token a name declares.

    For derivatives no key matches (``Hermes-3-Llama-3.1-405B``, ``Llama-3.1-Tulu-3-405B``): a fine-tune carries at
    least its base's compute (guideline para. 117), so the base's figure and systemic flag apply. The longest family
    wins (``llama 3 1`` over ``llama 3``); two different entries at the same length match nothing (ambiguous).
    """
    best: dict[str, tuple[int, BaseModel, str]] = {}
    for name in names:
        key = name_key(name)
        for family, sizes, model in _FAMILIES:
            if family and _contains(key, family) and all(s in key for s in sizes):
                score = len(family)
                if score > best.get(model.model_id, (-1, model, name))[0]:
                    best[model.model_id] = (score, model, name)
    if not best:
        return None
    top = max(score for score, _, _ in best.values())
    winners = [(model, name) for score, model, name in best.values() if score == top]
    if len(winners) != 1:
        return None
    model, name = winners[0]
    return CatalogMatch(model, MatchMethod.FAMILY_SIZE, name)


def match_base_model(reference: str | None) -> CatalogMatch | None:
    """The catalog entry for a model id, name, JumpStart id or path, or None (unknown, or ambiguous).

    Exact Hugging Face id first, then the alias table (any case), then ``model_names.name_key`` of each name the
    reference contains (``model_names.candidate_names``), then the family and size a name declares
    (``match_family_size``). A path whose segments name two different models is ambiguous and matches nothing.
    Keys keep size tokens, so a name never matches a model of another size.
    """
    text = (reference or "").strip()
    if not text:
        return None
    lower = text.lower()
    if lower in _IDS:
        return CatalogMatch(_IDS[lower], MatchMethod.EXACT, text)
    if lower in _ALIASES:
        return CatalogMatch(_ALIASES[lower], MatchMethod.ALIAS, text)
    found: dict[str, tuple[BaseModel, str]] = {}
    names = candidate_names(text)
    for name in names:
        model = _KEYS.get(name_key(name))
        if model is not None:
            found.setdefault(model.model_id, (model, name))
    if not found:
        return match_family_size(names)
    if len(found) != 1:
        return None
    model, name = next(iter(found.values()))
    return CatalogMatch(model, MatchMethod.NORMALISED, name)
