"""The iMotions FACS guide: its two tables parsed into ``action_units`` and
``emotion_action_units``.

The pure part works on the page's HTML (``beautifulsoup4`` with the standard library's
``html.parser``) and knows nothing of Spark:

* :func:`parse_page` finds the two tables by their *header text* (case, whitespace and a
  parenthesised remark such as "Example (Hover to Play)" do not matter; CSS classes are never
  looked at), and reads every row into :class:`ActionUnit` and :class:`EmotionCombination`;
* :func:`facs_rows` maps the page's emotion names to ``emotions`` ids and lays out the rows of
  both tables.

Both raise a :class:`FacsPageError` naming what is missing or malformed, so a changed page fails
*before* anything is written. The Spark side, :func:`write_facs`, then mirrors the page into the
tables: rows MERGEd on their key (only changed rows are touched, so a re-run on the same page
commits no Delta version) and rows no longer on the page deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from pyspark.sql.types import StructType

from femo.ingest.layout import LabelMap
from femo.platform.errors import FemoError
from femo.platform.schemas import ACTION_UNITS, EMOTION_ACTION_UNITS, TableSpec
from femo.platform.settings import HttpSettings
from femo.sources.http import get, session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: The guide this job was written against.
DEFAULT_URL: Final = (
    "https://imotions.com/blog/learning/research-fundamentals/facial-action-coding-system/"
)
#: How the page appears in ``sources``.
SOURCE_ID: Final = "imotions_facs"
SOURCE_KIND: Final = "web_page"

#: Header cells that identify each table (normalised by :func:`header_text`).
ACTION_UNIT_HEADERS: Final = ("action unit", "description", "facial muscle", "example")
EMOTION_HEADERS: Final = ("emotion", "action units", "description", "examples")

#: ``<img>`` attributes that may hold the example's URL, most specific first: animation
#: plugins keep the GIF in ``data-gif`` while ``src`` shows a still; lazy loaders keep the real
#: URL in ``data-lazy-src`` / ``data-src`` while ``src`` is a ``data:`` placeholder.
IMAGE_URL_ATTRIBUTES: Final = (
    "data-gif",
    "data-animated-src",
    "data-lazy-src",
    "data-src",
    "data-original",
    "src",
)
#: Columns that say when and by which run a row was written, not what the page says.
STAMP_COLUMNS: Final = ("scraped_at", "run_id")
#: Media types a fetched page may have.
HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", ""})

_SPACE = re.compile(r"\s+")
_REMARK = re.compile(r"\([^)]*\)")
_AU_CELL = re.compile(r"^(?:AU\s*)?(?P<au>\d+)\s*(?:\((?P<note>.*)\))?$", re.IGNORECASE)
_COMBINATION = re.compile(r"^(?P<aus>[^()]*?)\s*(?:\((?P<note>.*)\))?$")
_AU_TOKEN = re.compile(r"^(?:AU\s*)?(?P<au>\d+)$", re.IGNORECASE)
_EMOTION_PARTS = re.compile(r"[/,]")


class FacsPageError(FemoError):
    """The page is not the FACS guide femo knows how to read; nothing was written."""


class MissingTableError(FacsPageError):
    """A table the job needs is not on the page (or its header row changed)."""


class BadRowError(FacsPageError):
    """A row of a table cannot be read (e.g. its action unit is not an integer)."""


class UnknownEmotionError(FacsPageError):
    """An emotion of the page maps to no ``emotions`` synonym, or to more than one emotion."""


@dataclass(frozen=True)
class ActionUnit:
    """One row of the guide's main action-unit table."""

    action_unit: int
    name: str
    facial_muscle: str | None
    example_gif_url: str | None
    #: The AU cell's remark, e.g. "also shows slight AU4 and AU10" from
    #: "9 (also shows slight AU4 and AU10)".
    note: str | None


@dataclass(frozen=True)
class EmotionCombination:
    """One row of the guide's "Emotions and Action Units" table."""

    emotion: str
    action_units: tuple[int, ...]
    #: The cell as written, e.g. "6 + 12" or "12 + 14 (on one side of the face)".
    action_units_text: str
    note: str | None
    description: str | None


@dataclass(frozen=True)
class FacsPage:
    """Everything the job takes from the page."""

    source_url: str
    action_units: tuple[ActionUnit, ...]
    emotions: tuple[EmotionCombination, ...]


@dataclass(frozen=True)
class FacsRows:
    """Rows of both tables, ready to write: the content columns in the specs' order (see
    :func:`content_schema`), and the stamps every written row gets."""

    action_units: list[tuple[Any, ...]]
    emotion_action_units: list[tuple[Any, ...]]
    scraped_at: datetime
    run_id: str


@dataclass(frozen=True)
class TableChange:
    """What writing one table did: rows now mirrored, inserted, updated, deleted."""

    rows: int
    inserted: int
    updated: int
    deleted: int

    def part(self, name: str) -> str:
        """``name: 30 rows (+30 ~0 -0)``."""
        return f"{name}: {self.rows} rows (+{self.inserted} ~{self.updated} -{self.deleted})"


@dataclass(frozen=True)
class FacsSummary:
    """What :func:`write_facs` did to both tables."""

    action_units: TableChange
    emotion_action_units: TableChange

    def line(self) -> str:
        """One-line summary for the job's output."""
        return (
            f"{self.action_units.part(ACTION_UNITS.name)}; "
            f"{self.emotion_action_units.part(EMOTION_ACTION_UNITS.name)}"
        )


# -- pure part: HTML in, dataclasses out ------------------------------------------------------


def cell_text(cell: Tag) -> str:
    """The visible text of a cell, whitespace (``&nbsp;``, ``<br>``, newlines) collapsed."""
    return _SPACE.sub(" ", cell.get_text(" ")).strip()


def header_text(text: str) -> str:
    """A header cell reduced to what identifies it: lower case, parenthesised remarks and
    trailing colons dropped, whitespace collapsed ("Example (Hover to Play)" -> "example")."""
    return _SPACE.sub(" ", _REMARK.sub(" ", text)).strip(" :*").lower()


def _rows(table: Tag) -> list[Tag]:
    """The table's own ``<tr>`` elements (not those of a table nested in a cell), in order."""
    return [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]


def _cells(row: Tag) -> list[Tag]:
    return [c for c in row.find_all(["th", "td"], recursive=False) if isinstance(c, Tag)]


def _table_headers(table: Tag) -> list[str]:
    rows = _rows(table)
    return [header_text(cell_text(c)) for c in _cells(rows[0])] if rows else []


def find_table(
    soup: BeautifulSoup, headers: Sequence[str], what: str
) -> tuple[list[Tag], dict[str, int]]:
    """The data rows of the first table whose header row holds every one of ``headers``, and
    the column index of each header.

    The header row is the table's first row (``<thead>`` or not, ``<th>`` or ``<td>`` cells).
    Extra columns are allowed; later tables with the same headers are ignored (logged).

    Raises:
        MissingTableError: no table has these headers; the message lists the header rows seen.
    """
    seen: list[str] = []
    found: tuple[list[Tag], dict[str, int]] | None = None
    for table in soup.find_all("table"):
        if not isinstance(table, Tag):
            continue
        names = _table_headers(table)
        if all(h in names for h in headers):
            if found is not None:
                log.info("ignoring a further %s table with headers %s", what, names)
                continue
            found = (_rows(table)[1:], {h: names.index(h) for h in headers})
        else:
            seen.append(" | ".join(names) or "(no header)")
    if found is None:
        tables = "; ".join(f"[{s}]" for s in seen) or "none"
        raise MissingTableError(
            f"no {what} table on the page: expected a header row with "
            f"{' | '.join(headers)}; tables found: {tables}"
        )
    return found


def example_url(cell: Tag, base_url: str) -> str | None:
    """The example image of a cell as an absolute URL: a GIF if any candidate is one, else the
    first real URL; ``None`` when the cell has no image. ``data:`` placeholders of lazy
    loaders are skipped (see :data:`IMAGE_URL_ATTRIBUTES`); links around the image count too."""
    candidates: list[str] = []
    for element in cell.find_all(["img", "a", "source"]):
        if not isinstance(element, Tag):
            continue
        names = ("href",) if element.name == "a" else (*IMAGE_URL_ATTRIBUTES, "srcset")
        for name in names:
            value = element.get(name)
            if isinstance(value, str) and value.strip():
                url = value.strip().split()[0] if name == "srcset" else value.strip()
                if not url.lower().startswith("data:"):
                    candidates.append(urljoin(base_url, url))
    gifs = [u for u in candidates if u.lower().split("?", 1)[0].endswith(".gif")]
    return next(iter(gifs or candidates), None)


def parse_action_unit_cell(text: str) -> tuple[int, str | None]:
    """``(9, "also shows slight AU4 and AU10")`` from ``"9 (also shows slight AU4 and AU10)"``.

    Raises:
        BadRowError: the cell does not start with an integer (``AU`` prefix allowed).
    """
    match = _AU_CELL.match(text.strip())
    if match is None:
        raise BadRowError(f"{text!r} is not an integer action unit")
    note = (match.group("note") or "").strip()
    return int(match.group("au")), note or None


def parse_combination(text: str) -> tuple[tuple[int, ...], str | None]:
    """``((12, 14), "on one side of the face")`` from ``"12 + 14 (on one side of the face)"``.

    Raises:
        BadRowError: a part between ``+`` is not an integer action unit, or one repeats.
    """
    match = _COMBINATION.match(text.strip())
    parts = match.group("aus").split("+") if match else [text]
    units = []
    for part in parts:
        token = _AU_TOKEN.match(part.strip())
        if token is None:
            raise BadRowError(f"{text!r}: {part.strip()!r} is not an integer action unit")
        units.append(int(token.group("au")))
    if len(set(units)) != len(units):
        raise BadRowError(f"{text!r} names an action unit twice")
    note = ((match.group("note") if match else None) or "").strip()
    return tuple(units), note or None


def _needed(cells: list[Tag], columns: dict[str, int], where: str) -> dict[str, Tag]:
    if len(cells) <= max(columns.values()):
        raise BadRowError(f"{where}: {len(cells)} cells, expected {max(columns.values()) + 1}")
    return {name: cells[i] for name, i in columns.items()}


def parse_action_units(
    rows: Iterable[Tag], columns: dict[str, int], base_url: str
) -> tuple[ActionUnit, ...]:
    """The action units of the main table's data rows (empty rows skipped).

    Raises:
        BadRowError: a row's AU is not an integer, repeats, or has no description; or the
            table has no rows.
    """
    units: dict[int, ActionUnit] = {}
    for number, row in enumerate(rows, start=1):
        cells = _cells(row)
        if not any(cell_text(c) for c in cells):
            continue
        where = f"action units table, row {number}"
        cell = _needed(cells, columns, where)
        try:
            au, note = parse_action_unit_cell(cell_text(cell["action unit"]))
        except BadRowError as exc:
            raise BadRowError(f"{where}: {exc}") from None
        name = cell_text(cell["description"])
        if not name:
            raise BadRowError(f"{where}: AU {au} has no description")
        if au in units:
            raise BadRowError(f"{where}: AU {au} is listed twice")
        units[au] = ActionUnit(
            action_unit=au,
            name=name,
            facial_muscle=cell_text(cell["facial muscle"]) or None,
            example_gif_url=example_url(cell["example"], base_url),
            note=note,
        )
    if not units:
        raise BadRowError("the action units table has no rows")
    return tuple(units.values())


def parse_emotions(rows: Iterable[Tag], columns: dict[str, int]) -> tuple[EmotionCombination, ...]:
    """The emotions and their action-unit combinations (empty rows skipped).

    Raises:
        BadRowError: a row has no emotion or an unreadable combination; or the table has no rows.
    """
    emotions = []
    for number, row in enumerate(rows, start=1):
        cells = _cells(row)
        if not any(cell_text(c) for c in cells):
            continue
        where = f"emotions table, row {number}"
        cell = _needed(cells, columns, where)
        emotion = cell_text(cell["emotion"])
        if not emotion:
            raise BadRowError(f"{where}: no emotion name")
        text = cell_text(cell["action units"])
        try:
            units, note = parse_combination(text)
        except BadRowError as exc:
            raise BadRowError(f"{where} ({emotion}): {exc}") from None
        emotions.append(
            EmotionCombination(
                emotion=emotion,
                action_units=units,
                action_units_text=text,
                note=note,
                description=cell_text(cell["description"]) or None,
            )
        )
    if not emotions:
        raise BadRowError("the emotions table has no rows")
    return tuple(emotions)


def _link(soup: BeautifulSoup, selector: str, attribute: str) -> str | None:
    element = soup.select_one(selector)
    value = element.get(attribute) if element is not None else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_page(html: str | bytes, url: str, *, saved_copy: bool = False) -> FacsPage:
    """Both tables of the FACS guide.

    Args:
        html: the page (bytes are decoded as the page's ``<meta charset>`` says).
        url: where the page was read; relative image URLs are resolved against it (or the
            page's ``<base href>``).
        saved_copy: the page is a saved file: its ``<link rel="canonical">``, when present,
            stands for ``url`` (as source and base), since the file's own location is not where
            the page is published.

    Raises:
        MissingTableError, BadRowError: see :func:`find_table` and the row parsers.
    """
    soup = BeautifulSoup(html, "html.parser")
    if saved_copy:
        url = _link(soup, "link[rel~=canonical][href]", "href") or url
    base_url = urljoin(url, _link(soup, "base[href]", "href") or "")
    au_rows, au_columns = find_table(soup, ACTION_UNIT_HEADERS, "action units")
    emotion_rows, emotion_columns = find_table(soup, EMOTION_HEADERS, "emotions and action units")
    page = FacsPage(
        source_url=url,
        action_units=parse_action_units(au_rows, au_columns, base_url),
        emotions=parse_emotions(emotion_rows, emotion_columns),
    )
    log.info(
        "read %d action units and %d emotions from %s",
        len(page.action_units),
        len(page.emotions),
        url,
    )
    return page


def emotion_id(name: str, labels: LabelMap) -> int:
    """The ``emotions`` id of a name as the page writes it: the whole name, or each part of
    "Happiness / Joy" split on ``/`` and ``,``, looked up among the synonyms.

    Raises:
        UnknownEmotionError: no part matches, or parts match different emotions.
    """
    candidates = [name, *(p for p in _EMOTION_PARTS.split(name) if p.strip())]
    ids = {found for c in candidates if isinstance(found := labels.resolve(c), int)}
    if not ids:
        raise UnknownEmotionError(
            f"emotion {name!r} on the page matches no emotion synonym: "
            "add it to the synonyms in sql/seed/emotions.sql"
        )
    if len(ids) > 1:
        raise UnknownEmotionError(f"emotion {name!r} on the page matches emotions {sorted(ids)}")
    return ids.pop()


def facs_rows(page: FacsPage, labels: LabelMap, scraped_at: datetime, run_id: str) -> FacsRows:
    """Rows of ``action_units`` and ``emotion_action_units`` for ``page`` (specs' column order).

    Raises:
        UnknownEmotionError: see :func:`emotion_id`; also two rows of the same emotion.
        BadRowError: an emotion names an action unit the action-unit table lacks.
    """
    known = {u.action_unit for u in page.action_units}
    units = [
        (u.action_unit, u.name, u.facial_muscle, u.example_gif_url, u.note, page.source_url)
        for u in page.action_units
    ]
    links: list[tuple[Any, ...]] = []
    seen: dict[int, str] = {}
    for combo in page.emotions:
        eid = emotion_id(combo.emotion, labels)
        if eid in seen:
            raise UnknownEmotionError(
                f"emotions {seen[eid]!r} and {combo.emotion!r} on the page are the same emotion"
            )
        seen[eid] = combo.emotion
        missing = [au for au in combo.action_units if au not in known]
        if missing:
            raise BadRowError(
                f"emotion {combo.emotion!r} names action units {missing} "
                "that the action units table does not list"
            )
        links.extend(
            (
                eid,
                combo.emotion,
                au,
                position,
                combo.action_units_text,
                combo.note,
                combo.description,
                page.source_url,
            )
            for position, au in enumerate(combo.action_units, start=1)
        )
    return FacsRows(units, links, scraped_at, run_id)


# -- fetching -----------------------------------------------------------------------------------


def fetch_page(url: str, settings: HttpSettings) -> tuple[bytes, str]:
    """The page's bytes and the URL they came from (after redirects, redacted).

    Raises:
        femo.sources.http.FetchError: the request failed for good (after retries).
        FacsPageError: the answer is not HTML.
    """
    with session(settings) as http:
        fetched = get(http, url, settings)
    if fetched.content_type not in HTML_TYPES:
        raise FacsPageError(f"{fetched.url} answered {fetched.content_type}, not an HTML page")
    return fetched.content, fetched.url


# -- Spark side -------------------------------------------------------------------------------


def content_schema(spec: TableSpec) -> StructType:
    """The columns of ``spec`` that hold what the page says (all but the stamps)."""
    return spec.schema_without(STAMP_COLUMNS)


def write_facs(spark: SparkSession, database: str, rows: FacsRows) -> FacsSummary:
    """Mirror the page's rows into ``action_units`` and ``emotion_action_units``.

    The tables mirror the page, their only source: rows are MERGEd on the key when their
    content (every column but ``scraped_at`` and ``run_id``) is new or changed, and an action
    unit, or an emotion's action unit, that the page no longer lists is deleted. A re-run on the
    same page commits no Delta version. Order: action units upserted, then the link table
    upserted and pruned, then action units pruned, so a reader never sees a link to an action
    unit that is not there.
    """
    from femo.platform.catalog import LocalRows, merge_rows

    # Two small tables: diffed on the driver (LocalRows), a Spark diff costs seconds of planning.
    units = LocalRows(content_schema(ACTION_UNITS), rows.action_units)
    links = LocalRows(content_schema(EMOTION_ACTION_UNITS), rows.emotion_action_units)
    stamps = {"scraped_at": rows.scraped_at, "run_id": rows.run_id}  # STAMP_COLUMNS
    upserted = merge_rows(spark, ACTION_UNITS, database, units, stamps=stamps)
    linked = merge_rows(spark, EMOTION_ACTION_UNITS, database, links, stamps=stamps, prune={})
    # The units are all in place now: this call only prunes those the page no longer lists.
    pruned = merge_rows(spark, ACTION_UNITS, database, units, stamps=stamps, prune={})
    return FacsSummary(
        TableChange(len(rows.action_units), upserted.inserted, upserted.updated, pruned.deleted),
        TableChange(
            len(rows.emotion_action_units), linked.inserted, linked.updated, linked.deleted
        ),
    )
