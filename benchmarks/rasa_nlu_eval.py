"""Rasa's intent accuracy on labelled messages, beside `madoguchi nlu eval`; run it with Rasa's own Python:

    ~/.cache/madoguchi/rasa-3.6.21/bin/python benchmarks/rasa_nlu_eval.py MODEL.tar.gz FILE.jsonl... [-v]

MODEL is a model trained with the README's recipe (`make rasa` prints the one the tests use). Rasa's
`nlu_fallback` counts as out_of_scope, as the action server answers it. `-v` lists the misses.
"""

import asyncio
import collections
import json
import sys

from rasa.core.agent import Agent


async def evaluate(model: str, files: list[str], verbose: bool) -> None:
    agent = Agent.load(model)
    for path in files:
        with open(path, encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        scores: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        misses = []
        for row in rows:
            parsed = await agent.parse_message(row["text"])
            found = parsed["intent"]["name"]
            found = "out_of_scope" if found == "nlu_fallback" else found
            right = found == row["intent"]
            for key in ("all", row.get("lang", "?")):
                scores[key][0] += right
                scores[key][1] += 1
            if not right:
                misses.append((row["text"], row["intent"], found, round(parsed["intent"]["confidence"], 2)))
        print(path, "  ".join(f"{key} {right / total:.3f} ({right}/{total})" for key, (right, total) in scores.items()))
        for miss in misses if verbose else ():
            print("   ", *miss)


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if argument != "-v"]
    asyncio.run(evaluate(arguments[0], arguments[1:], "-v" in sys.argv))
