"""Every language in the all-languages image, through the real Docker sandbox.

Each gets hello, stdin/stdout, compile error, runtime error, timeout and a fork bomb (and
SandboxFusion's client on the service).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sf_sandbox import Limits, Sandbox, SandboxConfigError, Status
from sf_sandbox.languages import LANGUAGES, CodeRequest, code_job, get_language, run_code
from sf_sandbox.testing import require_sandbox

pytestmark = pytest.mark.docker
IMAGE = "sf-sandbox:all"
COMPILED = {"c", "cpp", "go", "java", "rust"}

HELLO = {
    "python": 'print("hello")',
    "bash": "echo hello",
    "c": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }',
    "javascript": 'console.log("hello");',
    "go": 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello") }',
    "java": 'public class Hello { public static void main(String[] a) { System.out.println("hello"); } }',
    "rust": 'fn main() { println!("hello"); }',
}
ECHO = {  # read two numbers from stdin, print their sum
    "python": "a, b = map(int, input().split())\nprint(a + b)",
    "bash": "read a b\necho $((a + b))",
    "c": '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b);\n'
    'printf("%ld\\n", a + b); }',
    "cpp": "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }",
    "javascript": 'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\n'
    "console.log(a + b);",
    "go": 'package main\nimport "fmt"\nfunc main() { var a, b int; fmt.Scan(&a, &b); fmt.Println(a + b) }',
    "java": "import java.util.Scanner;\npublic class Main { public static void main(String[] x) {\n"
    "Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }",
    "rust": "use std::io::Read;\nfn main() { let mut s = String::new();\n"
    "std::io::stdin().read_to_string(&mut s)"
    ".unwrap();\nlet v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();"
    ' println!("{}", v[0] + v[1]); }',
}
BROKEN = {  # does not compile (or parse)
    "python": "def f(:\n    pass",
    "bash": "if then fi (",
    "c": "int main(void) { return }",
    "cpp": "int main() { undeclared_thing(); }",
    "javascript": "function (",
    "go": "package main\nfunc main() { x := }",
    "java": "public class Main { void f( }",
    "rust": 'fn main() { let x: i32 = "no"; }',
}
CRASH = {  # (program, exit code it ends with)
    "python": ("raise RuntimeError('boom')", 1),
    "bash": ("echo boom >&2; exit 3", 3),
    "c": ('#include <stdio.h>\nint main(void) { fputs("boom\\n", stderr); return 3; }', 3),
    "cpp": ('#include <stdexcept>\nint main() { throw std::runtime_error("boom"); }', -6),
    "javascript": ("throw new Error('boom');", 1),
    "go": ('package main\nfunc main() { panic("boom") }', 2),
    "java": (
        'public class Main { public static void main(String[] a) { throw new RuntimeException("boom"); } }',
        1,
    ),
    "rust": ('fn main() { panic!("boom"); }', 101),
}
LOOP = {
    "python": "while True:\n    pass",
    "bash": "while :; do :; done",
    "c": "int main(void) { volatile int x = 0; for (;;) x++; }",
    "cpp": "int main() { volatile int x = 0; for (;;) x++; }",
    "javascript": "for (;;) {}",
    "go": "package main\nfunc main() { x := 0; for { x++ } }",
    "java": "public class Main { public static void main(String[] a) { long x = 0; while (true) x++; } }",
    "rust": "fn main() { let mut x: u64 = 1;\n"
    'loop { x = x.wrapping_add(1); if x == 0 { println!("{}", x); } } }',
}
FORK_BOMB = {
    "python": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "bash": "bomb() { bomb | bomb & }\nwhile :; do bomb; done",
    "c": "#include <unistd.h>\nint main(void) { for (;;) fork(); }",
    "cpp": "#include <unistd.h>\nint main() { for (;;) fork(); }",
    "javascript": 'const cp = require("child_process");\n'
    "for (;;) { try { cp.spawn(process.execPath, [__filename], { detached: true }); } catch (e) {} }",
    "go": 'package main\nimport "os/exec"\nfunc main() { for { exec.Command("/proc/self/exe").Start() } }',
    "java": "public class Main { public static void main(String[] a) { while (true) {\n"
    'try { new ProcessBuilder("sleep", "1000").start(); } catch (Exception e) {} } } }',
    "rust": 'fn main() { loop { let _ = std::process::Command::new("/proc/self/exe").spawn(); } }',
}


@pytest.fixture(scope="module")
def polyglot(docker_ready: None) -> Iterator[Sandbox]:
    require_sandbox(IMAGE)
    with Sandbox(image=IMAGE, limits=Limits(timeout=30), pool_size=2) as sb:
        yield sb


@pytest.fixture
def lone_polyglot(docker_ready: None) -> Iterator[Sandbox]:
    require_sandbox(IMAGE)
    with Sandbox(image=IMAGE, limits=Limits(timeout=30), pool_size=1) as sb:
        yield sb


def code(lang: str, program: str, **kw: Any) -> CodeRequest:
    return CodeRequest(code=program, language=lang, compile_timeout=kw.pop("compile_timeout", 30), **kw)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hello_world(polyglot: Sandbox, lang: str) -> None:
    r = run_code(polyglot, code(lang, HELLO[lang]))
    assert r.status is Status.OK, (r.error, r.compile and r.compile.stderr, r.run and r.run.stderr)
    assert r.run is not None and r.run.stdout == "hello\n" and r.run.exit_code == 0
    assert (r.compile is not None) == (lang in COMPILED)
    if r.compile is not None:
        assert r.compile.status is Status.OK and r.compile.duration > 0


@pytest.mark.parametrize("lang", LANGUAGES)
def test_stdin_to_stdout(polyglot: Sandbox, lang: str) -> None:
    r = run_code(polyglot, code(lang, ECHO[lang], stdin=b"40 2\n"))
    assert r.ok and r.run is not None and r.run.stdout == "42\n", (r.error, r.run and r.run.stderr)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compile_error_is_its_own_status(polyglot: Sandbox, lang: str) -> None:
    r = run_code(polyglot, code(lang, BROKEN[lang]))
    if lang in COMPILED:
        assert r.status is Status.COMPILE_ERROR and r.run is None
        assert r.compile is not None and r.compile.exit_code not in (0, None) and r.compile.stderr.strip()
    else:  # interpreted: the parser's complaint is a run-time error
        assert r.status is Status.ERROR and r.compile is None and r.run is not None and r.run.stderr.strip()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_runtime_error(polyglot: Sandbox, lang: str) -> None:
    program, exit_code = CRASH[lang]
    r = run_code(polyglot, code(lang, program))
    assert r.status is Status.ERROR and r.run is not None and r.run.exit_code == exit_code, (r.error, r.run)
    assert "boom" in r.run.stderr
    if lang in COMPILED:
        assert r.compile is not None and r.compile.status is Status.OK


@pytest.mark.parametrize("lang", LANGUAGES)
def test_run_timeout(polyglot: Sandbox, lang: str) -> None:
    t0 = time.monotonic()
    r = run_code(polyglot, code(lang, LOOP[lang], run_timeout=1.0))
    assert r.status is Status.TIMEOUT and r.run is not None and r.run.status is Status.TIMEOUT, r.error
    assert "1s" in (r.error or "")
    if lang in COMPILED:
        assert r.compile is not None and r.compile.status is Status.OK
    assert time.monotonic() - t0 < (r.compile.duration if r.compile else 0) + 6


@pytest.mark.parametrize("lang", LANGUAGES)
def test_fork_bomb_is_contained(lone_polyglot: Sandbox, lang: str) -> None:
    """Killed at the run timeout (or by the pids limit), and then gone: the next job sees none of it."""
    before = lone_polyglot.replaced
    t0 = time.monotonic()
    r = run_code(lone_polyglot, code(lang, FORK_BOMB[lang], run_timeout=2.0))
    took = time.monotonic() - t0
    assert r.status in (Status.TIMEOUT, Status.ERROR, Status.MEMORY), (r.status, r.error)
    assert took < (r.compile.duration if r.compile else 0) + 15
    # nothing of the bomb is left where the next job runs: the supervisor, its forker and the job only
    census = "import os\nprint(sum(1 for p in os.listdir('/proc') if p.isdigit()))"
    after = run_code(lone_polyglot, code("python", census))
    assert after.ok and after.run is not None and after.run.stdout == "3\n", (
        after.run,
        lone_polyglot.replaced - before,
    )
    after = run_code(lone_polyglot, code(lang, HELLO[lang]))
    assert after.ok and after.run is not None and after.run.stdout == "hello\n"


def test_compile_timeout_is_the_compile_phase(polyglot: Sandbox) -> None:
    r = run_code(polyglot, code("rust", HELLO["rust"], compile_timeout=0.05))
    assert r.status is Status.TIMEOUT and r.run is None
    assert r.compile is not None and r.compile.status is Status.TIMEOUT and "compile phase" in (r.error or "")


def test_compiled_output_cap_memory_and_files(polyglot: Sandbox) -> None:
    flood = '#include <stdio.h>\nint main(void) { for (;;) fputs("yyyyyyyy", stdout); }'
    r = run_code(polyglot, code("c", flood, run_timeout=10))
    assert (
        r.status is Status.OUTPUT_LIMIT
        and r.run is not None
        and len(r.run.stdout_bytes) == Limits().output_bytes
    )
    assert r.compile is not None and r.compile.status is Status.OK
    hog = "#include <stdlib.h>\n#include <string.h>\n"
    hog += "int main(void) { for (;;) memset(malloc(1 << 24), 1, 1 << 24); }"
    r = run_code(polyglot, code("c", hog))
    assert r.status is Status.MEMORY and r.run is not None and r.run.status is Status.MEMORY, (
        r.status,
        r.error,
    )
    assert r.compile is not None and r.compile.status is Status.OK
    prog = (
        '#include <stdio.h>\nint main(void) { FILE *f = fopen("out.txt", "w"); fputs("made", f); fclose(f); }'
    )
    r = run_code(polyglot, code("c", prog, files={"input.txt": b"x"}, fetch_files=("out.txt",)))
    assert r.ok and r.files == {"out.txt": b"made"}


def test_bad_requests() -> None:
    with pytest.raises(SandboxConfigError, match="unknown language 'cobol'"):
        get_language("cobol")
    assert get_language("NodeJS").name == "javascript" and get_language("c++").name == "cpp"
    with pytest.raises(SandboxConfigError, match="where the c code goes"):
        code_job(CodeRequest(code="", language="c", files={"main.c": b""}), Limits())
    with pytest.raises(SandboxConfigError, match="reserved"):
        CodeRequest(code="", language="c", fetch_files=(".sf-phases.json",))


def test_sandboxfusion_client_on_every_language(start_server: Callable[..., Any]) -> None:
    from sandbox_fusion import RunCodeRequest, RunStatus, SummaryMapping
    from sandbox_fusion import run_code as fusion_run

    require_sandbox(IMAGE)
    server = start_server("--languages", "all", "--pool-size", "2")
    names = {
        "python": "python",
        "bash": "bash",
        "cpp": "cpp",
        "javascript": "nodejs",
        "go": "go",
        "java": "java",
    }
    names["rust"] = "rust"
    for ours, theirs in names.items():
        reply = fusion_run(
            RunCodeRequest(code=HELLO[ours], language=theirs), endpoint=server.url, max_attempts=1
        )
        assert reply.status == RunStatus.Success and reply.run_result.stdout == "hello\n", (theirs, reply)
        assert (reply.compile_result is not None) == (ours in COMPILED)
    bad = fusion_run(RunCodeRequest(code=BROKEN["cpp"], language="cpp"), endpoint=server.url, max_attempts=1)
    assert bad.status == RunStatus.Failed and bad.run_result is None and bad.compile_result.return_code != 0
    from sandbox_fusion import summary_run_code_result

    assert summary_run_code_result(bad, SummaryMapping(CompileFailed="CE")) == "CE"
    assert server.metric("sf_sandbox_jobs_total", endpoint="run_code", status="compile_error") == 1


def test_build_image_cli_refuses_unknown_languages(capsys: pytest.CaptureFixture[str]) -> None:
    from sf_sandbox.cli import main

    assert main(["sandbox", "build-image", "--languages", "c,cobol"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown language 'cobol'") and "Traceback" not in err
    assert main(["sandbox", "build-image", "--languages", "go", "--base", "python:3.12-slim"]) == 2
    assert "--base builds a Python-only image" in capsys.readouterr().err


def test_build_image_is_cached_with_its_languages(docker_ready: None) -> None:
    from sf_sandbox.image import build_image, image_for_languages, image_languages, image_status

    require_sandbox(IMAGE)
    assert image_for_languages(("python",)) == "sf-sandbox:py3"
    assert image_for_languages(tuple(LANGUAGES)) == IMAGE
    assert image_for_languages(("python", "c", "go")) == "sf-sandbox:c-go"
    assert image_languages(IMAGE) == tuple(LANGUAGES) and image_languages("sf-sandbox:py3") == ("python",)
    assert image_status("sf-sandbox:py3", ("python", "go")) == "outdated"  # lacks go
    assert build_image(languages="all", log=lambda _m: None) == "cached"


def test_cli_run_picks_the_language_from_the_suffix(
    polyglot: Sandbox, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from sf_sandbox.cli import main

    src = tmp_path / "add.cpp"
    src.write_text(ECHO["cpp"])
    assert main(["sandbox", "run", str(src), "--stdin", "40 2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["status"], data["language"], data["run"]["stdout"]) == ("ok", "cpp", "42\n")
    assert data["compile"]["status"] == "ok"
    bad = tmp_path / "Main.java"
    bad.write_text(BROKEN["java"])
    assert main(["sandbox", "run", str(bad)]) == 0  # the sandbox worked; the program did not compile
    err = capsys.readouterr().err
    assert "error:" in err and "[sandbox] java status=compile_error" in err
    assert main(["sandbox", "run", str(src), "--language", "cobol"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown language 'cobol'")
    assert main(["sandbox", "run", str(src), "--image", "sf-sandbox:py3"]) == 1
    assert "has no cpp toolchain: sf sandbox build-image --languages all" in capsys.readouterr().err


def test_a_program_that_kills_its_driver_is_its_own_error(polyglot: Sandbox) -> None:
    """Nothing a job does may read as sandbox_error (a harness redoes those)."""
    prog = "#include <signal.h>\n#include <unistd.h>\nint main(void) { kill(getppid(), SIGKILL); pause(); }"
    r = run_code(polyglot, code("c", prog))
    assert r.status is Status.ERROR and r.run is not None and r.run.status is Status.ERROR, (
        r.status,
        r.error,
    )
    assert r.compile is not None and r.compile.status is Status.OK
