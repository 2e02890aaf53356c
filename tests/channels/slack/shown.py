"""What a posted Slack message shows and offers, read from its Block Kit blocks."""

from tests.channels.slack.fake_slack_api import Call


def texts(call: Call) -> str:
    """Everything a posted message shows: section texts, fields, header, context and button labels."""
    shown = []
    for block in call.blocks:
        shown.append(block.get("text", {}).get("text", ""))
        shown += [field["text"] for field in block.get("fields", [])]
        for element in block.get("elements", []):
            shown.append(element["text"]["text"] if element.get("type") == "button" else element.get("text", ""))
        shown.append(block.get("accessory", {}).get("text", {}).get("text", ""))
    return "\n".join(text for text in shown if text)


def buttons(call: Call) -> dict[str, str]:
    """A posted message's quick-reply buttons: label → value (the payload a click sends back)."""
    return {element["text"]["text"]: element["value"] for block in call.blocks if block["type"] == "actions"
            for element in block["elements"]}
