"""The matching rules: aliases, word boundaries, accents, overlapping names, links, positions, first
paragraph and cited domains."""

from tasks.visibility.extraction import (
    BrandRule,
    Matcher,
    analyse,
    domain_of,
    highlight,
    parse_aliases,
    parse_domains,
    pattern_problem,
)


def _rule(id, name, aliases="", domains="", ours=False):
    terms, patterns = parse_aliases(name, aliases)
    return BrandRule(
        id=id, name=name, is_ours=ours, terms=terms, patterns=patterns, domains=parse_domains(domains)
    )


def _names(matcher, text):
    return [(matcher.rules[m.brand_id].name, text[m.start : m.end]) for m in matcher.find(text)]


def test_aliases_are_found_case_insensitively():
    matcher = Matcher([_rule(1, "Acme", "ACME Corp\nacme.io")])

    found = _names(matcher, "acme is fine; Acme Corp too, and ACME.")

    assert found == [("Acme", "acme"), ("Acme", "Acme Corp"), ("Acme", "ACME")]


def test_only_whole_words_count():
    matcher = Matcher([_rule(1, "Acme")])

    assert _names(matcher, "Acmes, Pacme and acme_x are not Acme; (Acme) is.") == [
        ("Acme", "Acme"),
        ("Acme", "Acme"),
    ]


def test_accents_do_not_matter_either_way_and_offsets_stay_on_the_original_text():
    matcher = Matcher([_rule(1, "Citroën"), _rule(2, "Renault")])

    text = "Les voitures CITROEN et rénault… et Citroën"
    found = _names(matcher, text)

    assert found == [("Citroën", "CITROEN"), ("Renault", "rénault"), ("Citroën", "Citroën")]


def test_decomposed_accents_and_german_sharp_s_map_back_to_the_right_characters():
    matcher = Matcher([_rule(1, "Straße"), _rule(2, "Zoë")])
    text = "In der STRASSE wohnt Zoe\u0308 und in der Straße auch."

    found = _names(matcher, text)

    assert found == [("Straße", "STRASSE"), ("Zoë", "Zoe\u0308"), ("Straße", "Straße")]


def test_the_longer_overlapping_name_wins():
    matcher = Matcher([_rule(1, "Apple"), _rule(2, "Apple Music")])

    found = _names(matcher, "Apple Music beats Spotify; Apple makes phones.")

    assert found == [("Apple Music", "Apple Music"), ("Apple", "Apple")]


def test_in_languages_written_without_spaces_brands_are_found_beside_other_words():
    matcher = Matcher([_rule(1, "トヨタ"), _rule(2, "Acme"), _rule(3, "华为"), _rule(4, "โตโยต้า")])

    assert _names(matcher, "トヨタは良い車です。私はAcmeが好き。") == [("トヨタ", "トヨタ"), ("Acme", "Acme")]
    assert _names(matcher, "华为手机很好") == [("华为", "华为")]
    assert _names(matcher, "ฉันชอบโตโยต้ามาก") == [("โตโยต้า", "โตโยต้า")]
    assert _names(Matcher([_rule(1, "삼성")]), "삼성은 좋아요") == [("삼성", "삼성")]
    assert _names(matcher, "Acmes, AcmeCorp and 华为 Acme_x") == [("华为", "华为")]  # Latin words stay whole


def test_markdown_link_text_counts_and_its_target_does_not():
    matcher = Matcher([_rule(1, "Acme"), _rule(2, "Globex")])

    found = _names(matcher, "See [Acme](https://globex.com/acme) or https://www.globex.com/x for more.")

    assert found == [("Acme", "Acme")]


def test_regular_expression_aliases():
    matcher = Matcher([_rule(1, "Acme", r"re:acme\s*(?:inc|ltd)")])

    assert _names(matcher, "ACME Ltd and acme inc.") == [("Acme", "ACME Ltd"), ("Acme", "acme inc")]
    assert pattern_problem("(") is not None
    assert pattern_problem("a*") is not None  # matches empty text


def test_regular_expression_aliases_ignore_case_and_accents_as_names_do():
    matcher = Matcher([_rule(1, "Acme", "re:Acme\\s?Corp\nre:Citroën C[34]")])

    found = _names(matcher, "ACME CORP, AcmeCorp and citroen c4 or CITROËN C3.")

    assert found == [
        ("Acme", "ACME CORP"),
        ("Acme", "AcmeCorp"),
        ("Acme", "citroen c4"),
        ("Acme", "CITROËN C3"),
    ]
    assert pattern_problem("Citroën C[34]") is None


def test_positions_first_paragraph_and_counts():
    matcher = Matcher([_rule(1, "Acme", ours=True), _rule(2, "Globex"), _rule(3, "Initech")])
    text = "Globex leads.\n\nAcme follows, then Globex again.\nAcme."

    findings = analyse(matcher, text, [])

    globex, acme = findings.brands[2], findings.brands[1]
    assert (globex.position, globex.mention_count, globex.in_first_paragraph) == (1, 2, True)
    assert (acme.position, acme.mention_count, acme.in_first_paragraph) == (2, 2, False)
    assert 3 not in findings.brands


def test_cited_domains_with_their_rank_subdomains_included():
    matcher = Matcher(
        [_rule(1, "Acme", domains="acme.com"), _rule(2, "Globex", domains="https://www.globex.io/")]
    )
    citations = [
        {"url": "https://www.wikipedia.org/x", "domain": "wikipedia.org"},
        {"url": "https://shop.acme.com/a", "domain": "shop.acme.com"},
        {"url": "https://acme.com/b"},
        {"url": "https://notacme.com/"},
    ]

    findings = analyse(matcher, "Nothing named here.", citations)

    acme = findings.brands[1]
    assert (acme.mention_count, acme.position, acme.citation_count, acme.citation_rank) == (0, None, 2, 2)
    assert 2 not in findings.brands
    assert findings.citation_count == 4


def test_highlight_escapes_the_answer_before_marking_mentions():
    matcher = Matcher([_rule(1, "Acme", ours=True), _rule(2, "<b>")])
    text = '<script>alert("x")</script> Acme & Globex'

    html = highlight(text, matcher.find(text), ours={1})

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<mark class="mention mention-ours">Acme</mark> &amp; Globex' in html


def test_empty_and_odd_inputs():
    matcher = Matcher([])
    assert matcher.find("Acme") == []
    assert analyse(Matcher([_rule(1, "Acme")]), "", None).brands == {}
    assert (
        analyse(Matcher([_rule(1, "Acme", domains="acme.com")]), "x", [None, {"url": 5}]).citation_count == 1
    )


def test_a_url_urlsplit_cannot_read_is_no_domain_and_extraction_goes_on():
    assert domain_of("[]") == "" and domain_of("http://[::1") == "" and domain_of("https://[x]/a") == ""
    assert parse_domains("[]\nhttp://[::1, https://www.Acme.com/") == ("acme.com",)
    citations = [{"url": "http://[::1"}, {"domain": "[]"}, {"url": "https://acme.com/a"}, {"url": "//[x"}]

    findings = analyse(Matcher([_rule(1, "Acme", domains="[]\nacme.com")]), "Nothing named here.", citations)

    acme = findings.brands[1]
    assert (acme.citation_count, acme.citation_rank) == (1, 3)
    assert findings.citation_count == 4


def test_a_pattern_that_backtracks_without_end_is_refused_when_saved():
    problem = pattern_problem("(a|aa)+b")

    assert "can take far too long on some answers" in problem
    assert pattern_problem(r"acme\s?(?:corp|inc)") is None
    assert pattern_problem(r"(\w+\s?)+corp") is None  # nested, but the regex engine finishes it at once


def test_a_stored_pattern_that_runs_out_of_time_is_dropped_and_the_other_brands_still_found(monkeypatch):
    """A `re:` alias saved before the check (or that the probes missed) cannot hold up a page or the
    worker: at its first timeout it is left out, named in `timed_out`, and matching goes on."""
    monkeypatch.setattr("tasks.visibility.extraction.PATTERN_TIMEOUT", 0.001)
    matcher = Matcher([_rule(1, "Acme", "re:(a|aa)+b"), _rule(2, "Globex")])
    text = "a" * 36 + "! Globex"

    first = _names(matcher, text)
    second = _names(matcher, "aab and Globex")

    assert first == [("Globex", "Globex")]
    assert matcher.timed_out == ["(a|aa)+b"]
    assert second == [("Globex", "Globex")]  # dropped for the rest of the matcher's work
