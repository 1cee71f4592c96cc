r"""The bubblewrap sandbox of the student process (``course.student``) while grading.

The student process runs the submission's own cells and nothing else (tests run in the grader
process). Inside ``bwrap`` (bubblewrap) it gets a **minimal root**, not the host's file system:

* ``/usr`` read-only, a few files of ``/etc``, the base interpreter's prefix, and of the
  course's packages only NumPy, matplotlib and their dependencies (bound at their own paths;
  every other site-/dist-packages folder is an empty read-only tmpfs). ``actgrad``, PyTorch,
  SciPy, scikit-learn are not there at all, so no code can import them. Of the course folder
  and the grader's home nothing is visible but the path to those packages (a venv may live
  there): no solutions, gradebook, config or other students' work; ``/run`` and ``/var``
  (with the host's Unix sockets) do not exist inside;
* its own work folder (a copy of the submission's extra files, never the notebook) and a
  private ``/tmp`` of bounded size are the only writable places;
* no network (new network namespace), a new PID namespace (everything it starts dies with
  it), an environment reduced to an allow-list;
* rlimits on address space, processes, CPU time, file size and open files. ``RLIMIT_NPROC``
  never applies to root, so a root grader drops the process to a throw-away uid (unique per
  grading process) with no capabilities; a non-root grader gets a user namespace instead, in
  which the limit counts only the sandbox's own processes.

Not stopped: reading world-readable files under /usr, total memory of many processes (the
limits are per process), CPU contention slowing other graders.
"""
from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`)"
UID_BASE = 1_900_000_000  # throw-away uids for root graders: UID_BASE + 8 * pid + k
ENV_KEEP = ("LANG", "LANGUAGE", "TZ", "NBGRADER_EXECUTION", "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: What the student process may import besides the standard library (with their requirements).
STUDENT_DISTRIBUTIONS = ("numpy", "matplotlib")
#: Never mounted, even if a dependency pulled them in.
FORBIDDEN = {"actgrad", "torch", "scipy", "sklearn", "scikit", "jax", "jaxlib", "tensorflow",
             "autograd", "nbgrader", "functorch"}
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed student process (each process in it; 0: no limit).

    ``memory`` is RLIMIT_AS (virtual address space, bytes). ``processes`` is RLIMIT_NPROC
    (processes *and* threads of the sandbox). ``cpu_seconds`` is RLIMIT_CPU per process (it
    dies when it is spent; wall time per cell is nbgrader's ``Execute.timeout``).
    """
    memory: int = 4 * 2**30
    processes: int = 256
    cpu_seconds: int = 900
    file_size: int = 256 * 2**20
    open_files: int = 1024
    tmp_size: int = 256 * 2**20


# Run inside bwrap as root (or as the grader): set the rlimits, give up root, exec the kernel.
_SHIM = r"""
import os, resource as r, signal, sys
uid, lim, argv = int(sys.argv[1]), [int(v) for v in sys.argv[2].split(",")], sys.argv[3:]
for k, v in zip((r.RLIMIT_AS, r.RLIMIT_NPROC, r.RLIMIT_CPU, r.RLIMIT_FSIZE, r.RLIMIT_NOFILE), lim):
    if v > 0:
        r.setrlimit(k, (v, v))
r.setrlimit(r.RLIMIT_CORE, (0, 0))
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
    if os.getuid() != uid or os.geteuid() == 0:
        sys.exit("sandbox: could not drop root")
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(argv[0], argv)
"""


@functools.lru_cache(maxsize=1)
def check_available() -> tuple[bool, str]:
    """Whether bubblewrap runs here: ``(True, path)`` or ``(False, reason with install hint)``."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    probe = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
             "--unshare-pid", "--die-with-parent", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap at {exe} cannot start: {exc}"
    if proc.returncode != 0:
        return False, (f"bubblewrap at {exe} cannot create namespaces here "
                       f"({proc.stderr.strip() or proc.returncode}); unprivileged user "
                       "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone)")
    return True, exe


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@functools.lru_cache(maxsize=1)
def allowed_packages() -> tuple[str, tuple[str, ...]]:
    """(site-packages folder, its entries the student process may import from).

    The entries are those of NumPy's and matplotlib's distributions and of everything they
    require (contourpy, pillow, ...): top-level packages, modules, ``.libs`` and ``.dist-info``.
    """
    from importlib import metadata

    site, names, todo, seen = None, set(), list(STUDENT_DISTRIBUTIONS), set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        site = site or os.path.realpath(str(dist.locate_file("")))
        for f in dist.files or ():
            top = f.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith(".pth"):
                names.add(top)
        for req in dist.requires or ():
            if "extra ==" not in req:
                todo.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    if site is None:
        raise RuntimeError("the student process needs NumPy, which is not installed")
    forbidden = {n for n in names if n.split(".")[0].split("-")[0].lower() in FORBIDDEN}
    return site, tuple(sorted(n for n in names - forbidden if os.path.exists(os.path.join(site, n))))


def student_python() -> str:
    """The base interpreter (not the venv's wrapper, whose site-packages hold everything)."""
    return os.path.realpath(sys.executable)


def _site_dirs(prefixes) -> list[str]:
    """Every site-/dist-packages folder of every Python found under ``prefixes``."""
    out = []
    for prefix in prefixes:
        for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages",
                        "local/lib/python3*/site-packages", "local/lib/python3*/dist-packages",
                        "lib/python3/dist-packages"):
            out += glob.glob(os.path.join(prefix, pattern))
    return sorted({os.path.realpath(p) for p in out})


def student_argv(argv: list[str], *, workdir: str, mpldir: str, limits: Limits = Limits(),
                 uid: int = -1) -> list[str]:
    """The bwrap command that runs ``argv`` (the student process) with a minimal root.

    Mounted: /usr read-only (with the top-level links into it), a few files of /etc, the base
    interpreter's prefix with its site-packages emptied, the allowed packages (NumPy,
    matplotlib) at their own paths, ``workdir`` and ``mpldir`` read-write, a private /tmp, /dev,
    /proc. Nothing else of the host exists inside: no course folder, no home, no /run or /var
    (so no Unix socket of the host), no other package. No network, own PID namespace,
    rlimits, and for a root grader the throw-away ``uid``.
    """
    ok, exe = check_available()
    if not ok:
        raise RuntimeError(f"cannot sandbox the student process: {exe}")
    python = student_python()
    prefix = os.path.realpath(sys.base_prefix)
    site, items = allowed_packages()
    args, made = [], {"/"}

    def parents(path):
        missing = []
        parent = os.path.dirname(path)
        while parent not in made:
            missing.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(missing):
            args.extend(["--perms", "0755", "--dir", d])
            made.add(d)
        made.add(path)

    for name in sorted(os.listdir("/")):       # /bin -> usr/bin and the like
        path = "/" + name
        if os.path.islink(path) and os.readlink(path).lstrip("/").startswith("usr"):
            args += ["--symlink", os.readlink(path), path]
            made.add(path)
    args += ["--ro-bind", "/usr", "/usr"]
    made.add("/usr")
    # The private /tmp comes before the interpreter and the packages: bwrap mounts in order, so a
    # course (or its .venv) that lives under /tmp is bound on top of the empty tmpfs, not hidden.
    args += ["--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/tmp"]
    made.add("/tmp")
    for f in ETC_FILES:
        if os.path.exists(f):
            parents(f)
            args += ["--ro-bind", f, f]
    if not _under(prefix, "/usr"):
        parents(prefix)
        args += ["--ro-bind", prefix, prefix]
    for d in _site_dirs(["/usr", prefix]):    # other Pythons' packages: empty and read-only
        args += ["--perms", "0755", "--tmpfs", d, "--remount-ro", d]
        made.add(d)
    parents(site)
    args += ["--perms", "0755", "--dir", site]
    for name in items:
        path = os.path.join(site, name)
        args += ["--ro-bind", path, path]
    for d in (workdir, mpldir):
        parents(d)
        args += ["--bind", d, d]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": mpldir, "PYTHONHASHSEED": "0",
           **{k: v for k, v in os.environ.items() if k in ENV_KEEP}}
    for k, v in sorted(env.items()):
        args += ["--setenv", k, v]
    lims = ",".join(str(v) for v in (limits.memory, limits.processes, limits.cpu_seconds,
                                     limits.file_size, limits.open_files))
    if uid >= 0:    # root: bwrap keeps almost every capability unless told otherwise
        ns = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:           # not root: a user namespace, in which RLIMIT_NPROC counts only the sandbox
        ns = ["--unshare-user"]
    # SIGINT (the grader's time limit) must reach the student's Python, not kill bwrap
    head = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sandbox", exe]
    return [*head, *ns, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--clearenv", "--dev", "/dev",
            "--proc", "/proc", *args, "--chdir", workdir,
            python, "-I", "-S", "-c", _SHIM, str(uid), lims, *argv]


def sandbox_uid() -> int:
    """A throw-away uid for this grading process (root graders only), -1 when not root."""
    if os.geteuid() != 0:
        return -1
    sandbox_uid.count = getattr(sandbox_uid, "count", -1) + 1
    return UID_BASE + 8 * os.getpid() + sandbox_uid.count % 8


def chown_tree(root: str, uid: int, gid: int) -> None:
    """Give ``root`` and everything under it to uid:gid, never following symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
            except FileNotFoundError:
                pass
    os.chown(root, uid, gid, follow_symlinks=False)


def announce(disabled: bool = False, stream=None) -> bool:
    """Say on stderr whether grading will be sandboxed; return True if it will be."""
    stream = stream or sys.stderr
    if disabled:
        print("autograde: sandbox OFF (--no-sandbox): student code runs with your permissions.",
              file=stream)
        return False
    ok, why = check_available()
    if ok:
        print("autograde: student code runs in its own process in a bubblewrap sandbox (only "
              "/usr, Python, NumPy and matplotlib mounted; no network; limits on "
              "memory/processes/CPU); tests run in the grader.", file=stream)
        return True
    print(f"autograde: WARNING: NOT sandboxed: {why}.\n  Student code will run (in its own "
          "process, tests apart) with your permissions and can read solutions/ and edit the "
          "gradebook.\n  Install bubblewrap, or pass --no-sandbox to grade unsandboxed on "
          "purpose.", file=stream)
    return False


def configure(cfg, root=None, limits: Limits | None = None):
    """Make the grading configuration ``cfg`` run every student process in the sandbox
    (``root``, the course folder, is accepted for callers of the old API: nothing of the host
    is mounted unless listed in :func:`student_argv`). Raises RuntimeError (with the install
    hint) if bwrap cannot run here."""
    ok, why = check_available()
    if not ok:
        raise RuntimeError(f"cannot sandbox grading: {why}")
    cfg.TwoProcessExecute.sandbox = True
    for trait, value in vars(limits or Limits()).items():
        cfg.TwoProcessExecute[f"limit_{trait}"] = value
    return cfg
