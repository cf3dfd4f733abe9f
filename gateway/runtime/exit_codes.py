"""Exit codes and the configuration-error message shared by every `refineryiq` subcommand.

Every subcommand exits 0 when done, 2 on a configuration error (the message names the file
and the field path of each problem), 1 on anything else, so scripts and systemd can tell a
broken config from a failed run whichever subcommand they called.
"""

from __future__ import annotations

import sys
from typing import TextIO

from plant.errors import ConfigError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2


def report_config_error(exc: ConfigError, stream: TextIO | None = None) -> int:
    """Print a configuration error (its file, then one line per problem) and return EXIT_CONFIG."""
    out = sys.stderr if stream is None else stream
    print(f"configuration error: {exc.path}", file=out)
    for problem in exc.problems:
        print(f"  {problem}", file=out)
    return EXIT_CONFIG
