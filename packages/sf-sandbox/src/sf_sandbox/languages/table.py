"""The language table: how each language is compiled and run, by name, alias and file suffix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sf_sandbox.errors import SandboxConfigError

__all__ = [
    "EXTENSIONS",
    "LANGUAGES",
    "PROFILES",
    "Language",
    "debian_packages",
    "get_language",
    "resolve_languages",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    """How one language is compiled and run inside the sandbox image."""

    name: str
    """Canonical name (``c``, ``cpp``, ``go``, …)."""
    aliases: tuple[str, ...] = ()
    """Other names accepted in requests (SandboxFusion's ``nodejs`` for JavaScript, …)."""
    packages: tuple[str, ...] = ()
    """Debian packages the image needs for it (python3 is always there)."""
    source: str
    """File name the code is written to in the work dir; ``{cls}`` is Java's public class name."""
    compile: tuple[str, ...] | None = None
    """Compiler argv (``{src}`` = source file, ``{cls}`` = Java class), or None when interpreted."""
    run: tuple[str, ...] = ()
    """Program argv (same placeholders); empty for Python (a warm ``source`` job)."""
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra environment for both phases."""
    probe: str = ""
    """A program on PATH that proves the toolchain is in the image."""

    def file_name(self, code: str) -> str:
        """The source file name for ``code``."""
        return self.source.format(cls=_java_class(code))

    def argv(self, template: tuple[str, ...], code: str) -> list[str]:
        """``template`` with its placeholders filled for ``code``."""
        return [a.format(src=self.file_name(code), cls=_java_class(code)) for a in template]


def _java_class(code: str) -> str:
    match = re.search(r"\bpublic\s+(?:(?:final|abstract|strictfp)\s+)*class\s+([A-Za-z_$][\w$]*)", code)
    return match.group(1) if match else "Main"


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language(name="python", aliases=("python3", "py"), source="main.py", probe="python3"),
        Language(name="bash", aliases=("sh", "shell"), source="main.sh", run=("bash", "{src}"), probe="bash"),
        Language(
            name="c",
            packages=("gcc", "libc6-dev"),
            source="main.c",
            compile=("gcc", "-O2", "-std=gnu11", "-o", "main", "{src}", "-lm"),
            run=("./main",),
            probe="gcc",
        ),
        Language(
            name="cpp",
            aliases=("c++", "cxx"),
            packages=("g++",),
            source="main.cpp",
            compile=("g++", "-O2", "-std=gnu++17", "-o", "main", "{src}"),
            run=("./main",),
            probe="g++",
        ),
        Language(
            name="javascript",
            aliases=("nodejs", "node", "js"),
            packages=("nodejs",),
            source="main.js",
            run=("node", "{src}"),
            probe="node",
        ),
        Language(
            name="go",
            aliases=("golang",),
            packages=("golang-go",),
            source="main.go",
            compile=("go", "build", "-o", "main", "{src}"),
            run=("./main",),
            # GOCACHE must be writable; the image ships std prebuilt, so a build stays small
            env={"GOCACHE": "/tmp/go-cache", "GOPATH": "/tmp/go", "GO111MODULE": "off", "CGO_ENABLED": "0"},
            probe="go",
        ),
        Language(
            name="java",
            packages=("openjdk-17-jdk-headless",),
            source="{cls}.java",
            compile=(
                "javac",
                "-J-XX:+UseSerialGC",
                "-J-XX:TieredStopAtLevel=1",
                "-J-XX:-UsePerfData",
                "-J-Xshare:auto",
                "{src}",
            ),
            run=("java", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:auto", "{cls}"),
            probe="javac",
        ),
        Language(
            name="rust",
            aliases=("rs",),
            packages=("rustc",),
            source="main.rs",
            compile=("rustc", "-O", "--edition", "2021", "-o", "main", "{src}"),
            run=("./main",),
            probe="rustc",
        ),
    )
}
"""Every supported language by canonical name."""

PROFILES: dict[str, tuple[str, ...]] = {
    "python": ("python",),
    "all": tuple(LANGUAGES),
}
"""Named language sets for ``sf sandbox build-image --languages``."""


EXTENSIONS = {
    ".py": "python",
    ".sh": "bash",
    ".bash": "bash",
    ".c": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".js": "javascript",
    ".mjs": "javascript",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
}
"""File name suffix → language, for ``sf sandbox run FILE`` without ``--language``."""


def get_language(name: str) -> Language:
    """The language called ``name`` (canonical or alias, case-insensitive).

    Raises:
        SandboxConfigError: unknown language (the message lists the known ones).
    """
    key = name.strip().lower()
    for lang in LANGUAGES.values():
        if key == lang.name or key in lang.aliases:
            return lang
    raise SandboxConfigError(f"unknown language {name!r}: use one of {', '.join(LANGUAGES)}")


def resolve_languages(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Canonical, sorted language names for a profile name or a comma list (``all``, ``c,go``).

    Python is always included (the supervisor needs it).

    Raises:
        SandboxConfigError: an unknown name.
    """
    items = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    names = {"python"}
    for item in items:
        if item.strip().lower() in PROFILES:
            names.update(PROFILES[item.strip().lower()])
        else:
            names.add(get_language(item).name)
    return tuple(sorted(names, key=list(LANGUAGES).index))


def debian_packages(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The Debian packages an image with ``languages`` needs, python3 first."""
    pkgs = ["python3"]
    for name in languages:
        for pkg in LANGUAGES[name].packages:
            if pkg not in pkgs:
                pkgs.append(pkg)
    return tuple(pkgs)
