r"""Run each student's kernel in a bubblewrap sandbox while nbgrader autogrades.

nbgrader executes a submission with the grader's own permissions, so student code could read
``../../../solutions``, edit the gradebook or phone home. Here every kernel starts inside
``bwrap`` (bubblewrap) with:

* the whole file system read-only, the course root, the grader's home and any extra ``hide``
  paths replaced by empty tmpfs mounts; only the interpreter (its prefixes and ``sys.path``
  entries) is bound back read-only, and the submission's own working folder read-write;
* a private ``/tmp`` of bounded size, a new network namespace (no network at all, the grader
  talks to the kernel over Unix sockets: jupyter_client's ``ipc`` transport), a new PID
  namespace (the sandbox sees and signals only its own processes, and everything it started
  dies with it) and an environment reduced to an allow-list;
* rlimits on address space, processes, CPU time, file size and open files. ``RLIMIT_NPROC``
  never applies to root, so a root grader drops the kernel to a throw-away uid (unique per
  grading process) with no capabilities (bwrap run by root would otherwise leave the kernel
  root with nearly all capabilities, able to unmount the tmpfs over ``solutions/``); a
  non-root grader gets a user namespace instead, in which the kernel counts only the
  sandbox's own processes (checked: 48 of 50 forks succeed there although 100 processes of
  the same uid run outside).

Not stopped: reading world-readable files outside the hidden folders, total memory of many
processes (the limits are per process), many files filling the disk through the work folder,
CPU and disk contention slowing other kernels; and nbgrader's own handling of the submission
outside the kernel (escaping symlinks in the work folder are deleted after the kernel stops).

``SandboxedKernelManager`` does this for any jupyter_client user; :func:`configure` points
the course's grading configuration (``course.autograde.CourseExecute``) at it.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, List, Unicode

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`)"
UID_BASE = 1_900_000_000  # throw-away uids for root graders: UID_BASE + 8 * pid + k
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "VIRTUAL_ENV", "MPLBACKEND", "PYTHONHASHSEED",
            "NBGRADER_EXECUTION", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed kernel (each process in it; 0 means no limit).

    ``memory`` is RLIMIT_AS (virtual address space, bytes): a kernel with NumPy and PyTorch
    imported maps about 1.7 GB (measured), so keep it above 2 GB. ``processes`` is RLIMIT_NPROC
    (processes *and* threads of the sandbox). ``cpu_seconds`` is RLIMIT_CPU per process (the
    kernel dies when it is spent; wall time per cell is nbgrader's ``Execute.timeout``).
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


@functools.lru_cache(maxsize=16)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """Directories a Python interpreter needs: its prefixes, ``sys.path`` and executable."""
    code = ("import json, os, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix,"
            " os.path.dirname(os.path.realpath(sys.executable)), *sys.path]))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONSAFEPATH": "1"}).stdout
    return tuple(sorted({os.path.realpath(p) for p in json.loads(out) if p and os.path.exists(p)}))


@functools.lru_cache(maxsize=1)
def _font_caches() -> tuple[str, ...]:
    """The grader's matplotlib font cache files (built once if missing), or ()."""
    try:
        import matplotlib
        from matplotlib import font_manager  # noqa: F401 (builds the cache if missing)
    except ImportError:
        return ()
    cache = Path(matplotlib.get_cachedir())
    return tuple(str(p) for p in cache.glob("fontlist-*.json"))


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


@dataclass
class Plan:
    """The mount layout of one sandbox; ``argv()`` turns it into bwrap options.

    Paths are made absolute and real, and mounted outer first. Hidden folders become empty,
    read-only tmpfs mounts (hidden files read as empty); a readable path is bound back read-only
    only when a hidden folder (or the private /tmp) covers it, and a hidden path inside it is
    hidden again after it.
    """
    hidden: list[str]                       # replaced by empty tmpfs
    readable: list[str]                     # bound back read-only where covered
    writable: list[str]                     # bound read-write (the work folder, the ipc folder)
    tmp_size: int = 256 * 2**20
    env: dict[str, str] = field(default_factory=dict)
    tmp: str = "/tmp"                       # the private tmpfs

    def argv(self) -> list[str]:
        real = lambda paths: sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
        hidden = real(self.hidden)
        ops = [("tmpfs", h) for h in hidden]
        ops += [("ro", p) for p in real(self.readable) if p not in hidden]
        ops += [("rw", p) for p in real(self.writable)]
        ops.sort(key=lambda op: (_depth(op[1]), ("tmpfs", "ro", "rw").index(op[0])))
        args = ["--perms", "1777", "--size", str(self.tmp_size), "--tmpfs", self.tmp]
        mounts = {self.tmp: "tmpfs"}          # path -> kind, of everything mounted so far
        remount = []
        for kind, path in ops:
            cover = max((m for m in mounts if _under(path, m)), key=_depth, default=None)
            in_tmpfs = cover is not None and mounts[cover] == "tmpfs"
            if kind == "tmpfs" and in_tmpfs or kind == "ro" and not in_tmpfs:
                continue                    # already empty / already visible
            if in_tmpfs:                    # bwrap would create missing parents with mode 0700
                parents, parent = [], os.path.dirname(path)
                while parent != cover and parent not in mounts:
                    parents.append(parent)
                    parent = os.path.dirname(parent)
                for d in reversed(parents):
                    args += ["--perms", "0755", "--dir", d]
                    mounts[d] = "tmpfs"
            if kind == "tmpfs" and os.path.isdir(path):
                args += ["--perms", "0755", "--tmpfs", path]
                remount.append(path)
            elif kind == "tmpfs":
                args += ["--ro-bind", "/dev/null", path]
            else:
                args += ["--ro-bind" if kind == "ro" else "--bind", path, path]
            mounts[path] = kind
        for path in remount:                # hidden folders: empty *and* read-only
            args += ["--remount-ro", path]
        for k, v in sorted(self.env.items()):
            args += ["--setenv", k, v]
        return args


def sandbox_uid() -> int:
    """A throw-away uid for this grading process (root graders only), -1 when not root."""
    if os.geteuid() != 0:
        return -1
    sandbox_uid.count = getattr(sandbox_uid, "count", -1) + 1
    return UID_BASE + 8 * os.getpid() + sandbox_uid.count % 8


def wrap(kernel_argv: list[str], *, workdir: str, ipc_dir: str, course_root: str,
         hide: list[str] | tuple[str, ...] = (), limits: Limits = Limits(),
         uid: int = -1, env: dict[str, str] | None = None) -> list[str]:
    r"""The argv that runs ``kernel_argv`` inside the sandbox.

    ``workdir`` (the submission's folder) and ``ipc_dir`` (sockets and connection file) are
    the only writable places besides a private ``/tmp``; ``course_root``, the grader's home
    and ``hide`` are empty. ``uid >= 0`` (root graders) drops the kernel to that uid.
    """
    ok, exe = check_available()
    if not ok:
        raise RuntimeError(f"cannot sandbox the kernel: {exe}")
    python = kernel_argv[0] if "python" in os.path.basename(kernel_argv[0]) else sys.executable
    readable = list(interpreter_paths(python)) + list(interpreter_paths(sys.executable))
    home = os.path.expanduser("~")
    hidden = [course_root, *hide] + ([home] if home not in ("/", "") else [])
    base_env = {k: v for k, v in os.environ.items() if k in ENV_KEEP or k.startswith("LC_")}
    base_env.update(HOME="/tmp", TMPDIR="/tmp", IPYTHONDIR="/tmp/.ipython",
                    MPLCONFIGDIR="/tmp/.matplotlib", XDG_CACHE_HOME="/tmp/.cache",
                    PYTHONNOUSERSITE="1")
    base_env.update(env or {})
    # ipykernel's parent poller would see PID 1 (bwrap) as a dead parent; 1 turns it off.
    base_env["JPY_PARENT_PID"] = "1"
    plan = Plan(hidden=hidden, readable=readable, writable=[workdir, ipc_dir],
                tmp_size=limits.tmp_size, env=base_env)
    lims = ",".join(str(v) for v in (limits.memory, limits.processes, limits.cpu_seconds,
                                     limits.file_size, limits.open_files))
    # jupyter_client interrupts with SIGINT to the whole process group, which would kill bwrap
    # (and with it the kernel): bwrap inherits SIGINT ignored, the shim restores it for the kernel.
    head = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sandbox", exe]
    if uid >= 0:    # root: bwrap keeps almost every capability unless told otherwise
        ns = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:           # not root: a user namespace, in which RLIMIT_NPROC counts only the sandbox
        ns = ["--unshare-user"]
    return [*head, *ns, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--clearenv", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc", *plan.argv(), "--chdir", workdir,
            sys.executable, "-I", "-S", "-c", _SHIM, str(uid), lims, *kernel_argv]


def _chown_tree(root: str, uid: int, gid: int) -> None:
    """Give ``root`` and everything under it to uid:gid, never following symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
            except FileNotFoundError:
                pass
    os.chown(root, uid, gid, follow_symlinks=False)


def _drop_escaping_links(root: str) -> list[str]:
    """Delete symlinks under ``root`` that point outside it (nbgrader follows links later)."""
    removed = []
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not _under(os.path.realpath(path), real_root):
                os.unlink(path)
                removed.append(path)
    return removed


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel runs in the bubblewrap sandbox.

    The kernel's working folder (``cwd`` given to ``start_kernel``, nbgrader's
    ``autograded/<student>/<assignment>``) is its only writable folder besides ``/tmp``.
    """
    course_root = Unicode("", help="Hidden from the kernel (default: the current folder).").tag(
        config=True)
    hide = List(Unicode(), help="More paths to hide from the kernel.").tag(config=True)
    memory_limit = Integer(Limits.memory, help="RLIMIT_AS in bytes (0: none).").tag(config=True)
    process_limit = Integer(Limits.processes, help="RLIMIT_NPROC (0: none).").tag(config=True)
    cpu_limit = Integer(Limits.cpu_seconds, help="RLIMIT_CPU in seconds (0: none).").tag(
        config=True)
    file_size_limit = Integer(Limits.file_size, help="RLIMIT_FSIZE in bytes.").tag(config=True)
    open_files_limit = Integer(Limits.open_files, help="RLIMIT_NOFILE.").tag(config=True)
    tmp_size = Integer(Limits.tmp_size, help="Size of the private /tmp in bytes.").tag(
        config=True)

    _sandbox_dir: str | None = None
    _sandbox_uid: int = -1
    _sandbox_workdir: str | None = None

    @property
    def limits(self) -> Limits:
        return Limits(memory=self.memory_limit, processes=self.process_limit,
                      cpu_seconds=self.cpu_limit, file_size=self.file_size_limit,
                      open_files=self.open_files_limit, tmp_size=self.tmp_size)

    async def _async_pre_start_kernel(self, **kw):
        ok, why = check_available()
        if not ok:
            raise RuntimeError(f"cannot sandbox the kernel: {why}")
        self._sandbox_dir = tempfile.mkdtemp(prefix="nbgrader-sandbox-")
        self.transport = "ipc"
        self.ip = os.path.join(self._sandbox_dir, "kernel")
        self.connection_file = os.path.join(self._sandbox_dir, "kernel.json")
        self._sandbox_workdir = os.path.abspath(kw.get("cwd") or os.getcwd())
        self._sandbox_uid = sandbox_uid()
        # a fresh MPLCONFIGDIR would make matplotlib rebuild its font cache (about 1 s)
        mpl = os.path.join(self._sandbox_dir, "matplotlib")
        os.mkdir(mpl)
        for cache in _font_caches():
            shutil.copy(cache, mpl)
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self._sandbox_uid >= 0:
            for path in (self._sandbox_dir, self._sandbox_workdir):
                _chown_tree(path, self._sandbox_uid, self._sandbox_uid)
        return cmd, kw

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return wrap(cmd, workdir=self._sandbox_workdir, ipc_dir=self._sandbox_dir,
                    course_root=os.path.abspath(self.course_root or os.getcwd()),
                    hide=self.hide, limits=self.limits, uid=self._sandbox_uid,
                    env={"MPLCONFIGDIR": os.path.join(self._sandbox_dir, "matplotlib")})

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if restart:
            return
        if self._sandbox_workdir and os.path.isdir(self._sandbox_workdir):
            for link in _drop_escaping_links(self._sandbox_workdir):
                self.log.warning("sandbox: removed symlink leaving the work folder: %s", link)
            if self._sandbox_uid >= 0:
                _chown_tree(self._sandbox_workdir, os.getuid(), os.getgid())
        if self._sandbox_dir:
            shutil.rmtree(self._sandbox_dir, ignore_errors=True)
            self._sandbox_dir = None

    cleanup_resources = _async_cleanup_resources


def announce(disabled: bool = False, stream=None) -> bool:
    """Say on stderr whether grading will be sandboxed; return True if it will be."""
    stream = stream or sys.stderr
    if disabled:
        print("autograde: sandbox OFF (--no-sandbox): student code runs with your permissions.",
              file=stream)
        return False
    ok, why = check_available()
    if ok:
        print("autograde: student code runs in a bubblewrap sandbox (course folder hidden, "
              "no network, limits on memory/processes/CPU).", file=stream)
        return True
    print(f"autograde: WARNING: NOT sandboxed: {why}.\n  Student code will run with your "
          "permissions and can read solutions/ and edit the gradebook.\n  Install bubblewrap, "
          "or pass --no-sandbox to grade unsandboxed on purpose.", file=stream)
    return False


def configure(cfg, root, hide=(), limits: Limits | None = None):
    """Make the grading configuration ``cfg`` start every kernel in the sandbox.

    ``root`` (the course directory) is hidden from student code, and so are ``hide`` and the
    nbgrader exchange folder. Raises RuntimeError (with the install hint) if bwrap cannot run.
    """
    ok, why = check_available()
    if not ok:
        raise RuntimeError(f"cannot sandbox grading: {why}")
    exchange = cfg.Exchange.root if "root" in cfg.Exchange else "/srv/nbgrader/exchange"
    cfg.CourseExecute.manager_class = SandboxedKernelManager
    km = cfg.SandboxedKernelManager
    km.course_root = str(Path(root).resolve())
    km.hide = [str(p) for p in (*hide, exchange) if os.path.exists(p)]
    for trait, value in vars(limits or Limits()).items():
        km[{"memory": "memory_limit", "processes": "process_limit", "cpu_seconds": "cpu_limit",
            "file_size": "file_size_limit", "open_files": "open_files_limit",
            "tmp_size": "tmp_size"}[trait]] = value
    return cfg
