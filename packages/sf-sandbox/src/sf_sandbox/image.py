"""Building the default sandbox image offline: debootstrap a minimal Debian with python3, import it.

No registry is needed: the rootfs comes from a Debian mirror (apt's own source), is trimmed, and
is imported with ``docker import``. The result is cached twice: the image in the engine (a second
``build_image`` returns at once) and the rootfs tarball under ``~/.cache/sf-sandbox`` (a reset
engine re-imports it in seconds). ``base=`` builds ``FROM`` any local image that has python3.

``languages=`` adds toolchains from Debian packages (``languages/table.py`` lists them) to a second
image, ``sf-sandbox:all`` for every language or ``sf-sandbox:<names>`` for a subset, built and
cached the same way; the Python-only image stays the small default. The image's label
``sf-sandbox.languages`` says what it holds.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

from sf_sandbox._json import json_object
from sf_sandbox.backends.docker import DEFAULT_IMAGE, LABEL, docker_client
from sf_sandbox.errors import ImageBuildError

IMAGE_REVISION = "1"
LANGUAGES_LABEL = f"{LABEL}.languages"
"""Image label: the comma-separated languages an image was built with (absent: Python only)."""
"""Bumped when the image's content changes, so an older cached image is rebuilt."""
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
)


def cache_dir() -> Path:
    """Where rootfs tarballs are kept (``$XDG_CACHE_HOME/sf-sandbox``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sf-sandbox"


def default_mirror() -> str:
    """The Debian mirror apt uses on this machine, else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"]:
                url = next((w for w in words[1:] if "://" in w), None)
                if url and "security" not in url:
                    return url
    return "http://deb.debian.org/debian"


def image_for_languages(languages: tuple[str, ...]) -> str:
    """The image name ``build_image`` gives a language set (canonical names, see ``resolve_languages``)."""
    from sf_sandbox.languages import PROFILES

    if set(languages) <= {"python"}:
        return DEFAULT_IMAGE
    if set(languages) == set(PROFILES["all"]):
        return "sf-sandbox:all"
    return "sf-sandbox:" + "-".join(n for n in languages if n != "python")


def build_hint(image: str) -> str:
    """The command that builds ``image`` when it is one of ours (``sf-sandbox:all``, ``sf-sandbox:c-go``)."""
    if image == DEFAULT_IMAGE:
        return "sf sandbox build-image"
    repo, _, tag = image.partition(":")
    if repo == "sf-sandbox" and tag:
        return f"sf sandbox build-image --languages {'all' if tag == 'all' else tag.replace('-', ',')}"
    return "build or load it (it needs python3 on PATH)"


def _image_labels(image: str) -> dict[str, object] | None:
    """The labels of ``image`` in the engine (empty without any), or None when it is not there.

    Raises:
        EngineUnavailableError: no engine.
    """
    import docker.errors

    try:
        img = docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        return None
    attrs = json_object(cast(object, img.attrs)) or {}  # the engine's JSON, untyped in the SDK
    config = json_object(attrs.get("Config")) or {}
    return json_object(config.get("Labels")) or {}


def _labelled_languages(labels: dict[str, object]) -> tuple[str, ...]:
    """The languages an image's labels name (``("python",)`` when they name none)."""
    value = labels.get(LANGUAGES_LABEL)
    return tuple(x for x in (value if isinstance(value, str) and value else "python").split(",") if x)


def image_languages(image: str) -> tuple[str, ...] | None:
    """The languages ``image`` was built with (its label; ``("python",)`` without one), or None if missing.

    Raises:
        EngineUnavailableError: no engine.
    """
    labels = _image_labels(image)
    return None if labels is None else _labelled_languages(labels)


def image_status(image: str = DEFAULT_IMAGE, languages: tuple[str, ...] = ()) -> str:
    """``current``, ``outdated`` or ``missing``; ``outdated`` too when it lacks one of ``languages``."""
    labels = _image_labels(image)
    if labels is None:
        return "missing"
    if labels.get(f"{LABEL}.image-revision") in (None, IMAGE_REVISION) and set(languages) <= set(
        _labelled_languages(labels)
    ):
        return "current"
    return "outdated"


def build_image(
    image: str | None = None,
    *,
    force: bool = False,
    suite: str = "bookworm",
    mirror: str | None = None,
    base: str | None = None,
    languages: tuple[str, ...] | str = ("python",),
    log: Callable[[str], None] = print,
) -> str:
    """Make ``image`` exist in the engine; return ``"cached"`` or ``"built"``.

    ``languages`` (a profile such as ``"all"``, a comma list, or canonical names) picks the
    toolchains; ``image`` defaults to :func:`image_for_languages` of them.

    Raises:
        EngineUnavailableError: no engine.
        SandboxConfigError: an unknown language, or ``base`` with languages besides Python.
        ImageBuildError: debootstrap missing or failing, not root, import failed.
    """
    from sf_sandbox.errors import SandboxConfigError
    from sf_sandbox.languages import debian_packages, resolve_languages

    langs = resolve_languages(languages)
    image = image or image_for_languages(langs)
    client = docker_client(timeout=600)
    if not force and image_status(image, langs) == "current":
        log(f"image {image} is present (cached); --force rebuilds it")
        return "cached"
    changes = [f"LABEL {LABEL}.image-revision={IMAGE_REVISION}", 'CMD ["python3"]', "WORKDIR /"]
    if langs != ("python",):
        changes.insert(1, f"LABEL {LANGUAGES_LABEL}={','.join(langs)}")
    if base:
        if langs != ("python",):
            raise SandboxConfigError("--base builds a Python-only image; drop --languages or --base")
        _build_from_base(client, image, base, log)
        return "built"
    suffix = "" if langs == ("python",) else "-" + "-".join(langs)
    tarball = cache_dir() / f"rootfs-{suite}-r{IMAGE_REVISION}{suffix}.tar"
    if force or not tarball.exists():
        _debootstrap(tarball, suite, mirror or default_mirror(), log, debian_packages(langs))
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    log(f"importing {tarball} as {image}")
    try:
        client.api.import_image_from_file(str(tarball), repository=repo, tag=tag, changes=changes)
    except Exception as exc:
        raise ImageBuildError(f"docker import failed: {exc}") from None
    _verify(image, log, langs)
    return "built"


def _debootstrap(
    tarball: Path,
    suite: str,
    mirror: str,
    log: Callable[[str], None],
    packages: tuple[str, ...] = ("python3",),
) -> None:
    tool = shutil.which("debootstrap")
    if tool is None:
        raise ImageBuildError(
            "debootstrap is not installed: `apt-get install debootstrap` (Debian/Ubuntu), or build from an "
            "image you have with `sf sandbox build-image --base python:3.12-slim`"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap needs root: run `sudo sf sandbox build-image`, or use --base IMAGE"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sf-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        minutes = "about a minute" if packages == ("python3",) else "several minutes: compilers and runtimes"
        log(f"debootstrap {suite} from {mirror} with {', '.join(packages)} ({minutes})")
        proc = subprocess.run(
            [tool, "--variant=minbase", "--include=" + ",".join(packages), suite, str(root), mirror],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
            raise ImageBuildError(f"debootstrap failed (exit {proc.returncode}):\n{tail}")
        for rel in TRIM:
            target = root / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
    log(f"rootfs cached at {tarball}")


def _build_from_base(client: object, image: str, base: str, log: Callable[[str], None]) -> None:
    dockerfile = (
        f"FROM {base}\nLABEL {LABEL}.image-revision={IMAGE_REVISION}\n"
        'RUN python3 -c "import sys; assert sys.version_info >= (3, 8)"\n'
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    log(f"building {image} FROM {base}")
    try:
        client.images.build(fileobj=buf, custom_context=True, tag=image, rm=True)  # type: ignore[attr-defined]
    except Exception as exc:
        raise ImageBuildError(
            f"building FROM {base} failed (it must exist locally and have python3): {exc}"
        ) from None
    _verify(image, log)


def _verify(image: str, log: Callable[[str], None], languages: tuple[str, ...] = ("python",)) -> None:
    from sf_sandbox import Job, Sandbox
    from sf_sandbox.languages import LANGUAGES

    probes = sorted({LANGUAGES[n].probe for n in languages if LANGUAGES[n].probe})
    check = (
        "import shutil, sys\n"
        f"missing = [p for p in {probes!r} if shutil.which(p) is None]\n"
        "print(sys.version.split()[0], *missing)"
    )
    with Sandbox(image=image) as sb:
        result = sb.run(Job(source=check))
    words = result.stdout.split()
    if not result.ok or len(words) != 1:
        raise ImageBuildError(
            f"the new image cannot run a job: {result.status}: {result.error or result.stderr}"
            if not result.ok
            else f"the new image lacks {', '.join(words[1:])}"
        )
    extra = f"; {', '.join(n for n in languages if n != 'python')}" if languages != ("python",) else ""
    log(f"image {image} ready (python {words[0]}{extra})")
