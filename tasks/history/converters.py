"""The `tag` path converter: any stored tag as the path of its page."""

import base64
import binascii
import unicodedata

from django.urls import reverse


class TagConverter:
    """Any stored tag as the path of its page, so a tag never breaks a page that links it.

    A tag that reads well in a path and survives browsers and proxies goes as it is (Django
    percent-encodes `?`, `#`, `%`, spaces…): `/tags/team-a:parks/fr/`. Any other tag (a control
    character, an empty, `.` or `..` segment, which browsers and proxies rewrite, or a leading `~`) goes
    as `~` and its UTF-8 in unpadded base64url: a tag `team-a\nq1` is `/tags/~dGVhbS1hCnEx/`.
    """

    regex = ".+"
    MARK = "~"

    def to_python(self, value: str) -> str:
        if not value.startswith(self.MARK):
            return value
        encoded = value[len(self.MARK) :]
        try:
            tag = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(value) from exc  # not a tag's URL: a 404
        if "\x00" in tag:
            raise ValueError(value)  # no tag has one (PostgreSQL cannot even compare one)
        return tag

    def to_url(self, value: str) -> str:
        tag = str(value)
        if self._plain(tag):
            return tag
        return self.MARK + base64.urlsafe_b64encode(tag.encode()).decode().rstrip("=")

    def _plain(self, tag: str) -> bool:
        if not tag or tag.startswith(self.MARK):
            return False
        if any(segment in ("", ".", "..") for segment in tag.split("/")):
            return False
        return not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in tag)


def tag_url(tag: str) -> str:
    """The URL of a tag's page, for any string (templates: `{% url 'history:tag_detail' tag=... %}`)."""
    return reverse("history:tag_detail", kwargs={"tag": tag})
