"""Prints the irc-parser-tests corpus (PyPI: irc-parser-tests) as JSON:
{"msg-split": [...], "msg-join": [...], "userhost-split": [...]}."""
import json
import os
import sys

import parser_tests
import yaml

data = os.path.join(os.path.dirname(parser_tests.__file__), "data")
out = {}
for name in ("msg-split", "msg-join", "userhost-split"):
    with open(os.path.join(data, name + ".yaml"), encoding="utf-8") as f:
        out[name] = yaml.safe_load(f)["tests"]
json.dump(out, sys.stdout)
