"""Reading a request body with a size bound, for every endpoint that takes one."""

from starlette.requests import Request


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` bytes (declared or actual).

    A declared Content-Length over the limit is refused before reading anything; the actual length is
    checked too, because the header may be missing or wrong.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = await request.body()
    return body if len(body) <= limit else None
