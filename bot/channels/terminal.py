"""The terminal channel: lines typed (or piped) in, replies printed as plain text with numbered buttons."""

from handlers.replies import Card, Link, Reply, Text


def render(replies: list[Reply]) -> str:
    """Replies as plain text; quick replies become `[1] label` lines the user can answer with the number."""
    blocks = []
    for reply in replies:
        match reply:
            case Text(text=text, quick_replies=buttons):
                blocks.append(text + _buttons(buttons))
            case Link(label=label, url=url, text=text):
                blocks.append(f"{text}\n{label}: {url}" if text else f"{label}: {url}")
            case Card(title=title, fields=fields, footer=footer, quick_replies=buttons):
                lines = [f"【{title}】", *(f"  {label}: {value}" for label, value in fields)]
                blocks.append("\n".join(lines + ([footer] if footer else [])) + _buttons(buttons))
            case _:
                raise TypeError(f"the terminal cannot render {type(reply).__name__}")
    return "\n\n".join(blocks)


def _buttons(buttons: tuple) -> str:
    if not buttons:
        return ""
    return "\n" + "\n".join(f"  [{number}] {button.label}" for number, button in enumerate(buttons, start=1))


def last_buttons(replies: list[Reply]) -> list[str]:
    """The payloads of the last reply's buttons, so typing `2` taps the second one."""
    for reply in reversed(replies):
        buttons = getattr(reply, "quick_replies", ())
        if buttons:
            return [button.payload for button in buttons]
    return []
