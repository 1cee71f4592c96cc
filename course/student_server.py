"""The student process: runs a submission's own cells and answers the grader's calls.

Started as ``python -I -S -c <course/wire.py + this file> SITE WORKDIR`` (``course.student``),
with ``SITE`` the only third-party packages it may import (NumPy, matplotlib and their
dependencies) and ``WORKDIR`` its working folder. It reads requests on fd 0 and answers on fd 1
(``course.wire`` messages); the student's ``print`` output is captured per request and C-level
output is discarded. It never receives a test: only the source of the student's cells, one at a
time, and the arguments of calls. Nothing here is trusted by the grader: whatever the student's
code does to this loop can only change the data it answers with.
"""
# This file runs after course/wire.py's source (course.student.student_source): np, struct,
# pack, unpack_header, Encoder, Decoder, WireError and is_array come from there.
import ast
import base64
import builtins
import io
import os
import signal
import sys
import traceback
import warnings

SITE, WORKDIR = sys.argv[1], sys.argv[2]     # already on sys.path (see course.student)
OUTPUT_LIMIT = 100_000          # characters of stdout/stderr kept per request


class Capture(io.TextIOBase):
    """A bounded text stream: keeps the first OUTPUT_LIMIT characters."""

    def __init__(self):
        self.parts, self.size, self.cut = [], 0, False

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = OUTPUT_LIMIT - self.size
        if len(s) > room:
            s, self.cut = s[:max(room, 0)], True
        if s:
            self.parts.append(s)
            self.size += len(s)
        return len(s)

    def text(self):
        return "".join(self.parts) + ("\n[output truncated]\n" if self.cut else "")


class Server:
    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.handles = []

    # -- transport ----------------------------------------------------------------------------
    def _read(self, n):
        chunks = []
        while n:
            b = os.read(self.rfd, min(n, 1 << 20))
            if not b:
                raise EOFError
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def receive(self):
        (n,) = struct.unpack("<Q", self._read(8))
        header, sizes = unpack_header(self._read(n))
        return header, [self._read(s) for s in sizes]

    def send(self, header, buffers=()):
        data = memoryview(pack(header, buffers))
        while data:
            data = data[os.write(self.wfd, data):]

    # -- values -------------------------------------------------------------------------------
    def handle(self, x):
        self.handles.append(x)
        return {"H": len(self.handles) - 1}

    def decoder(self, buffers):
        def handle(n):
            if n >= len(self.handles):
                raise WireError("unknown handle")
            return self.handles[n]

        def name(s):
            if s not in self.ns:
                raise NameError(f"name {s!r} is not defined")
            return self.ns[s]
        return Decoder(buffers, handle, name)

    # -- requests -----------------------------------------------------------------------------
    def run_cell(self, code):
        out, err, outputs = Capture(), Capture(), []
        status = "ok"
        sys.stdout, sys.stderr = out, err
        try:
            tree = ast.parse(_strip_magics(code), "<cell>")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<cell>", "exec"), self.ns)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), self.ns)
                if value is not None:
                    outputs.append(("result", _repr(value)))
        except BaseException as exc:            # KeyboardInterrupt: the grader's time limit
            status = "error"
            outputs.append(("error", _error(exc)))
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        streams = [("stream", {"name": n, "text": c.text()}) for n, c in (("stdout", out), ("stderr", err))
                   if c.text()]
        return {"status": status, "outputs": streams + _figures() + outputs}

    def get(self, name):
        if name not in self.ns:
            return {"kind": "missing"}
        value = self.ns[name]
        if type(value) is type(sys):
            return {"kind": "module", "module": str(getattr(value, "__name__", ""))}
        if callable(value) and not is_array(value):
            return {"kind": "callable"}
        enc = Encoder(self.handle)
        return {"kind": "value", "value": enc(value)}, enc.buffers

    def call(self, req, buffers):
        dec = self.decoder(buffers)
        target = dec(req["target"])
        args, kwargs = dec(req["args"]), dec(req["kwargs"])
        n_nodes = len(dec.defined)
        nodes = [dec.defined[i] for i in range(n_nodes)]
        before = [x.tobytes() if type(x) is np.ndarray else None for x in nodes]
        out, err = Capture(), Capture()
        sys.stdout, sys.stderr = out, err
        error = result = None
        try:
            with warnings.catch_warnings():
                _set_filters(req.get("warnings", []))
                op = req.get("op")
                if op == "call":
                    result = target(*args, **kwargs)
                elif op == "attr":
                    result = getattr(target, str(req["attr"]))
                elif op == "item":
                    result = target[args[0]]
                elif op == "len":
                    result = len(target)
        except BaseException as exc:
            error = _error(exc)
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        enc = Encoder(self.handle, nodes={id(x): i for i, x in enumerate(nodes)})
        reply = {"error": error, "stdout": out.text(), "stderr": err.text()}
        if error is None:
            reply["result"] = enc(result)
        back = []
        for x, old in zip(nodes, before):
            if type(x) is np.ndarray and old is not None and x.tobytes() == old and is_array(x):
                back.append({"same": True})
            else:
                back.append({"v": enc.contents(x)})
        reply["back"] = back
        return reply, enc.buffers

    def serve(self):
        while True:
            try:
                req, buffers = self.receive()
            except EOFError:
                return
            op, extra = req.get("op"), []
            try:
                if op == "run":
                    reply = self.run_cell(str(req.get("code", "")))
                elif op == "get":
                    reply = self.get(str(req.get("name", "")))
                elif op in ("call", "attr", "item", "len"):
                    reply = self.call(req, buffers)
                else:
                    reply = {"fail": f"unknown request {op!r}"}
            except BaseException as exc:       # malformed request or unencodable answer
                reply = {"fail": "".join(traceback.format_exception_only(type(exc), exc))[-2000:]}
            if type(reply) is tuple:
                reply, extra = reply
            try:
                self.send(reply, extra)
            except WireError as exc:
                self.send({"fail": str(exc)})


def _strip_magics(code):
    """IPython magics (``%matplotlib inline``, ``!pip ...``, ``%%time``) have no meaning here."""
    lines = code.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    return "\n".join("pass  # " + l if l.lstrip().startswith(("%", "!")) else l for l in lines)


def _repr(value):
    try:
        text = repr(value)
    except BaseException as exc:
        text = f"<repr failed: {type(exc).__name__}>"
    return {"text/plain": text[:OUTPUT_LIMIT]}


def _error(exc):
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tb = [line for line in tb if 'File "<string>"' not in line]   # this server's own frames
    text = "".join(tb)
    if len(text) > 20_000:
        text = text[:10_000] + "\n[...]\n" + text[-10_000:]
    try:
        evalue = str(exc)[:5000]
    except BaseException:
        evalue = "<unprintable>"
    return {"ename": type(exc).__name__, "evalue": evalue, "traceback": text.splitlines()}


def _figures():
    """Open matplotlib figures as PNG display outputs (what the inline backend would show)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    outs = []
    try:
        for num in plt.get_fignums()[:20]:
            buf = io.BytesIO()
            plt.figure(num).savefig(buf, format="png", dpi=72)
            if buf.tell() < 2 * 2**20:
                outs.append(("display", {"image/png": base64.b64encode(buf.getvalue()).decode(),
                                         "text/plain": f"<Figure {num}>"}))
        plt.close("all")
    except BaseException:
        pass
    return outs


def _set_filters(filters):
    """The grader's warning filters, so ``warnings.simplefilter("error")`` in a test applies."""
    warnings.resetwarnings()
    for f in reversed(filters[:50]):
        try:
            action, message, category, module, lineno = f
            cat = getattr(builtins, str(category), None)
            if isinstance(cat, type) and issubclass(cat, Warning):
                warnings.filterwarnings(str(action), message=str(message or ""), category=cat,
                                        module=str(module or ""), lineno=int(lineno))
        except (TypeError, ValueError):
            pass


def main():
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = io.StringIO()
    os.chdir(WORKDIR)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server = Server(rfd, wfd)
    server.send({"ready": True, "pid": os.getpid()})
    server.serve()


main()
