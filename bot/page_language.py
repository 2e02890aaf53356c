"""The language of a page a browser asks for: `?lang=`, a remembered choice, the student's, Accept-Language."""

from starlette.requests import Request

from core.enums import Language


def choose_language(request: Request, preferred: Language | None = None, *, cookie: str | None = None,
                    default: Language = Language.JA) -> Language:
    """`?lang=ja|en`, else the language chosen before (the `cookie`), else the `preferred` one (a student's), else
    the Accept-Language header, else `default`."""
    for asked in (request.query_params.get("lang", ""), request.cookies.get(cookie, "") if cookie else ""):
        if asked in {lang.value for lang in Language}:
            return Language(asked)
    if preferred is not None:
        return preferred
    return accept_language(request.headers.get("accept-language", "")) or default


def accept_language(header: str) -> Language | None:
    """The language we speak with the highest q-value in an Accept-Language header, or None."""
    best: tuple[float, Language] | None = None
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in {lang.value for lang in Language} and quality > 0 and (best is None or quality > best[0]):
            best = (quality, Language(primary))
    return best[1] if best else None
