"""Configuration: every setting is a CLI flag with an environment variable
behind it, and `--help` names the variable."""

from __future__ import annotations

import argparse
import os

from .embedders import LOCAL_MODEL, OPENAI_DEFAULT_MODEL, OPENAI_NATIVE_DIMS, model_key


def env_flag(parser: argparse.ArgumentParser, flag: str, env: str, default=None, *,
             type=str, help: str = "", **kwargs) -> None:
    """Adds `flag` whose default comes from `env` when set."""
    raw = os.environ.get(env)
    value = default if raw in (None, "") else type(raw)
    shown = "unset" if default is None else default
    parser.add_argument(flag, default=value, type=type,
                        help=f"{help} [env: {env}; default: {shown}]", **kwargs)


def env_switch(parser: argparse.ArgumentParser, flag: str, env: str, *, help: str = "") -> None:
    """A store_true flag that is also on when `env` is 1/true/yes."""
    on = os.environ.get(env, "").strip().lower() in ("1", "true", "yes", "on")
    parser.add_argument(flag, action="store_true", default=on, help=f"{help} [env: {env}=1]")


def add_embedder_flags(parser: argparse.ArgumentParser) -> None:
    env_flag(parser, "--embedder", "JOBMATCH_EMBEDDER", None, choices=["openai", "local"],
             help="who makes vectors: 'openai' (default when OPENAI_API_KEY is set) "
                  "or 'local' (the bundled multilingual-e5-small, offline)")
    env_flag(parser, "--model", "JOBMATCH_MODEL", None,
             help=f"embedding model name (openai: {OPENAI_DEFAULT_MODEL}; local: {LOCAL_MODEL})")
    env_flag(parser, "--dimensions", "JOBMATCH_DIMENSIONS", None, type=int,
             help="vector size; text-embedding-3 models accept fewer than their native size")


def embedder_kind(args: argparse.Namespace) -> str:
    if args.embedder:
        return args.embedder
    return "openai" if os.environ.get("OPENAI_API_KEY") else "local"


def model_spec(args: argparse.Namespace) -> tuple[str, str, int]:
    """(database model key, provider, dimensions) for the configured embedder."""
    kind = embedder_kind(args)
    if kind == "local":
        if args.model not in (None, LOCAL_MODEL) or args.dimensions not in (None, 384):
            raise SystemExit(f"the local embedder is {LOCAL_MODEL} with 384 dimensions")
        return LOCAL_MODEL, "local", 384
    name = args.model or OPENAI_DEFAULT_MODEL
    dims = args.dimensions or OPENAI_NATIVE_DIMS.get(name)
    if not dims:
        raise SystemExit(f"--dimensions is required for model {name!r}")
    return model_key(name, dims), "openai", dims
