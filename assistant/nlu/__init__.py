"""Understanding commands: text -> intent, Snips-style slots and a confidence.

- `parser.IntentParser`: rule grammar + catalog gazetteer (no trained weights);
- `intent`: `IntentResult` / `EntityMatch` and the intent and slot names;
- `gazetteer`: catalog names per kind, matched fuzzily and phonetically;
- `lexicon`, `years`: word lists and spoken years;
- `cli`: the `assistant parse` command.
(`templates.py` belongs to the speech corpus builder.)
"""
