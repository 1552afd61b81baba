"""Finding brands in an answer: the matching rules, shared by extraction, the test page and highlighting.

Matching is case-insensitive and accent-insensitive (both sides are case-folded and stripped of combining
marks: "Citroën" matches "citroen"), on word boundaries ("Acme" is not found in "Acmes" nor "Pacme"). An
alias starting with `re:` is a regular expression matched against that folded text, with a time limit (the
`regex` package's timeout): a pattern that backtracks without end on some answer is refused when saved if
the probes find it, and is otherwise dropped at its first timeout, never holding up a page or the worker.
Where two names
overlap ("Apple" and "Apple Music"), the longer match at the same place wins and the shorter is not
counted. Link targets and bare URLs are not read ("[Acme](https://globex.com)" mentions Acme only):
cited domains are counted from the citations instead.
"""

import logging
import re
import unicodedata
from dataclasses import dataclass, field

import regex
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from tasks.upstream.results import domain_of

_URLS = re.compile(r"\]\([^)\s]*\)|https?://\S+|www\.\S+")
# Whole words: a name is not found inside a longer word. Scripts written without spaces (Thai, Lao, Myanmar,
# Khmer, Japanese kana, Chinese characters) or that attach particles to the word before (Korean) have no
# word edges to look for, so a neighbour in them does not make a word longer ("トヨタは", "私はAcmeが").
_NO_SPACES = (
    "\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uffdc"
)
_WORD_START = rf"(?<![^\W{_NO_SPACES}])"
_WORD_END = rf"(?![^\W{_NO_SPACES}])"
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# Seconds a `re:` alias may take over one answer (they take microseconds; one that backtracks without end,
# like `(a|aa)+b` on "aaaa…", would take years), and over each probe text when it is saved.
PATTERN_TIMEOUT = 0.25
PROBE_TIMEOUT = 0.05
PROBE_LENGTH = 64

logger = logging.getLogger(__name__)


def fold(text: str) -> tuple[str, list[int] | None]:
    """`text` case-folded without accents, and for each folded character the index it came from
    (None when they are the same: plain ASCII, the common case, is only lowercased)."""
    if text.isascii():
        return text.lower(), None
    out, origin = [], []
    for index, char in enumerate(text):
        if char.isascii():
            piece = char.lower()
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            piece = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        out.append(piece)
        origin.extend([index] * len(piece))
    return "".join(out), origin


def fold_term(term: str) -> str:
    return fold(term.strip())[0]


@dataclass(frozen=True)
class BrandRule:
    """One brand as the matcher sees it."""

    id: int
    name: str
    is_ours: bool = False
    terms: tuple[str, ...] = ()  # folded literal names
    patterns: tuple[str, ...] = ()  # regular expressions over folded text
    domains: tuple[str, ...] = ()


def parse_aliases(name: str, aliases: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The brand's literal terms (its name first) and its patterns, from the one-a-line aliases."""
    terms, patterns = [fold_term(name)], []
    for line in (aliases or "").splitlines():
        line = line.strip()
        if line.startswith("re:"):
            if line[3:].strip():
                patterns.append(line[3:].strip())
        elif line:
            terms.append(fold_term(line))
    return tuple(dict.fromkeys(t for t in terms if t)), tuple(patterns)


def parse_domains(domains: str) -> tuple[str, ...]:
    found = []
    for line in re.split(r"[\s,]+", domains or ""):
        host = domain_of(line)
        if host:
            found.append(host)
    return tuple(dict.fromkeys(found))


def compile_pattern(pattern: str) -> regex.Pattern:
    """A `re:` alias over folded text, ignoring case and accents as names do: its accented letters are
    folded (its ASCII is left alone, so escapes like \\S keep their meaning) and case is ignored."""
    folded = "".join(char if char.isascii() else fold(char)[0] for char in pattern)
    return regex.compile(_WORD_START + "(?:" + folded + ")" + _WORD_END, regex.IGNORECASE | regex.V0)


def _syntax_problem(pattern: str) -> str | None:
    try:
        compiled = regex.compile(pattern, regex.V0)
        compile_pattern(pattern)
    except regex.error as exc:
        return f"“{pattern}” is not a valid regular expression ({exc})."
    if compiled.match(""):
        return f"“{pattern}” matches empty text."
    return None


def _probes(pattern: str) -> list[str]:
    """Texts on which a pattern that backtracks without end shows it: a run of one of its characters (or
    of a word) followed by one it does not expect, e.g. "aaaa…a!" for `(a|aa)+b`."""
    chars = dict.fromkeys(char for char in fold(pattern)[0] if char.isalnum())
    runs = [char * PROBE_LENGTH for char in list(chars)[:20]]
    runs += ["a" * PROBE_LENGTH, "ab " * (PROBE_LENGTH // 3)]
    return [run + end for run in runs for end in ("!", "\n")]


def pattern_problem(pattern: str) -> str | None:
    """Why a `re:` alias cannot be saved, or None: bad syntax, empty matches, or too slow on a probe."""
    problem = _syntax_problem(pattern)
    if problem:
        return problem
    compiled = compile_pattern(pattern)
    try:
        for probe in _probes(pattern):
            compiled.search(probe, timeout=PROBE_TIMEOUT)
    except TimeoutError:
        return (
            f"“{pattern}” can take far too long on some answers (a repetition inside a repetition, such as "
            "(a|aa)+): write it so that each part of a text can be matched one way only."
        )
    return None


@dataclass(frozen=True)
class Match:
    brand_id: int
    start: int  # in the original text
    end: int


class Matcher:
    """All the brands of a set, compiled once."""

    def __init__(self, rules: list[BrandRule]):
        self.rules = {rule.id: rule for rule in rules}
        self._by_term: dict[str, int] = {}
        for rule in rules:
            for term in rule.terms:
                self._by_term.setdefault(term, rule.id)
        terms = sorted(self._by_term, key=len, reverse=True)
        self._literal = (
            re.compile(_WORD_START + "(?:" + "|".join(re.escape(t) for t in terms) + ")" + _WORD_END)
            if terms
            else None
        )
        self._patterns = []
        for rule in rules:
            for pattern in rule.patterns:
                if _syntax_problem(pattern) is None:
                    self._patterns.append((compile_pattern(pattern), rule.id, pattern))
        self.timed_out: list[str] = []  # `re:` aliases dropped after running out of time on an answer

    def find(self, text: str) -> list[Match]:
        """Every counted mention, in order, without overlaps (the longest at a place wins)."""
        if not text:
            return []
        folded, origin = fold(text)
        folded = _URLS.sub(lambda m: " " * len(m.group()), folded)
        spans = []
        if self._literal is not None:
            spans += [(m.start(), m.end(), self._by_term[m.group()]) for m in self._literal.finditer(folded)]
        for entry in list(self._patterns):
            compiled, brand_id, pattern = entry
            try:
                found = compiled.finditer(folded, timeout=PATTERN_TIMEOUT)
                spans += [(m.start(), m.end(), brand_id) for m in found if m.end() > m.start()]
            except TimeoutError:
                # Dropped for the rest of this matcher's work: one slow answer, not one per answer.
                self._patterns.remove(entry)
                self.timed_out.append(pattern)
                logger.warning("Brand alias re:%s ran out of time on an answer and was dropped", pattern)
        spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        matches, reached = [], 0
        for start, end, brand_id in spans:
            if start < reached:
                continue
            if origin is None:
                matches.append(Match(brand_id, start, end))
            else:
                last = origin[end - 1] + 1
                while last < len(text) and unicodedata.combining(text[last]):
                    last += 1  # the accents folded away belong to the match
                matches.append(Match(brand_id, origin[start], last))
            reached = end
        return matches


@dataclass
class BrandFinding:
    """What one answer says about one brand."""

    brand_id: int
    mention_count: int = 0
    first_at: int | None = None
    position: int | None = None
    in_first_paragraph: bool = False
    citation_count: int = 0
    citation_rank: int | None = None


@dataclass
class AnswerFindings:
    brands: dict[int, BrandFinding] = field(default_factory=dict)
    citation_count: int = 0
    matches: list[Match] = field(default_factory=list)


def first_paragraph_end(text: str) -> int:
    """Where the first non-blank paragraph ends (the whole text when there is one paragraph)."""
    start = len(text) - len(text.lstrip())
    found = _PARAGRAPH_BREAK.search(text, start)
    return found.start() if found else len(text)


def citation_domains(citations) -> list[str]:
    """The cited domains in citation order (rank 1 first)."""
    domains = []
    for citation in citations if isinstance(citations, list) else []:
        if isinstance(citation, dict):
            value = citation.get("domain") or citation.get("url") or ""
            domains.append(domain_of(value) if isinstance(value, str) else "")
    return domains


def owns(brand_domains: tuple[str, ...], domain: str) -> bool:
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in brand_domains)


def analyse(matcher: Matcher, text: str, citations) -> AnswerFindings:
    """Mentions, positions, first paragraph and cited domains of each brand in one answer."""
    text = text or ""
    findings = AnswerFindings(matches=matcher.find(text))
    paragraph_end = first_paragraph_end(text)
    for match in findings.matches:
        finding = findings.brands.setdefault(match.brand_id, BrandFinding(match.brand_id))
        finding.mention_count += 1
        if finding.first_at is None:
            finding.first_at = match.start
            finding.in_first_paragraph = match.start < paragraph_end
    ordered = sorted(findings.brands.values(), key=lambda f: f.first_at)
    for position, finding in enumerate(ordered, start=1):
        finding.position = position
    domains = citation_domains(citations)
    findings.citation_count = len(domains)
    for rule in matcher.rules.values():
        if not rule.domains:
            continue
        for rank, domain in enumerate(domains, start=1):
            if owns(rule.domains, domain):
                finding = findings.brands.setdefault(rule.id, BrandFinding(rule.id))
                finding.citation_count += 1
                if finding.citation_rank is None:
                    finding.citation_rank = rank
    return findings


def highlight(text: str, matches: list[Match], *, ours: set[int] = frozenset()) -> SafeString:
    """The text escaped, then each match wrapped in <mark> (escaping first: an answer is never HTML)."""
    parts, at = [], 0
    for match in matches:
        parts.append(escape(text[at : match.start]))
        kind = "mention-ours" if match.brand_id in ours else "mention-other"
        parts.append(f'<mark class="mention {kind}">{escape(text[match.start : match.end])}</mark>')
        at = match.end
    parts.append(escape(text[at:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece of the text was escaped above
