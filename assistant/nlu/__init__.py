"""Understanding commands: text -> intent, Snips-style slots, exclusions and a confidence.

- `parser.IntentParser`: the parser everything uses: a CRF slot tagger and an
  intent classifier (`model.py`, shipped in `model/`) combined with the rule
  grammar, negation scopes and catalog name resolution;
- `rules.RuleParser`: the rule grammar + catalog gazetteer alone;
- `intent`: `IntentResult` / `EntityMatch` and the intent, slot and question names;
- `features`, `negation`: tagger/classifier features; which slots a request rules out;
- `datasets`, `train`, `cli_train`: public NLU data, training, `assistant nlu train`;
- `gazetteer`: catalog names per kind, matched fuzzily and phonetically;
- `lexicon`, `years`: word lists and spoken years;
- `cli`: the `assistant parse` command.
(`templates.py` is shared with the speech corpus builder; `NLU_TEMPLATES` is the parser's own.)
"""
