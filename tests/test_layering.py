"""The package's layering: sub-packages import each other one way, files import each other
without cycles, and TensorFlow stays off the model path (the GPU machines run Keras on JAX
with no TensorFlow installed).

Every import counts, module-level or inside a function, and between files also
`importlib.import_module` / `__import__` with a literal name, as in
`../shared/hooks/layering.py`.
"""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "ptft_keras")
# What each part may import; anything else is a layering error. Read it bottom-up:
# specs, layers -> models -> variables -> transfer, peft -> training -> export -> cli.
ALLOWED = {
    "specs": set(),
    "layers": set(),
    "variables": set(),
    "models": {"layers", "specs", "transfer"},  # from_pretrained uses strict transfer
    "transfer": {"variables"},
    "peft": {"layers", "transfer", "variables"},
    "data": {"specs"},
    # keras-hub's adapter: its tasks' parts (head, units, adapters, LoRA); imported only
    # when a keras-hub model comes in (training.parts.parts_of, the CLI's hub commands).
    "hub": {"layers", "peft", "variables"},
    "training": {"data", "hub", "layers", "models", "peft", "specs", "transfer", "variables"},
    "export": {"data", "models", "peft", "specs"},
    "cli": {
        "data",
        "export",
        "hub",
        "models",
        "peft",
        "specs",
        "training",
        "transfer",
        "variables",
    },
}
# Parts whose modules must import without TensorFlow (at module level).
TF_FREE = ("specs", "layers", "variables", "models", "transfer", "peft")


def _modules():
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                part = os.path.relpath(path, PACKAGE).split(os.sep)[0].removesuffix(".py")
                yield part, path, ast.parse(open(path, encoding="utf-8").read())


def _imports(tree, path, all_levels=True):
    """Names imported by a module: every import, or module-level ones only."""
    nodes = ast.walk(tree) if all_levels else tree.body
    rel = os.path.relpath(path, os.path.dirname(PACKAGE)).split(os.sep)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = rel[: -node.level]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module


def _edges():
    edges = {}
    for part, path, tree in _modules():
        if part.startswith("_"):
            continue
        for name in _imports(tree, path):
            pieces = name.split(".")
            if pieces[0] == "ptft_keras" and len(pieces) > 1 and pieces[1] != part:
                edges.setdefault(part, set()).add(pieces[1])
    return edges


def _module_names(package):
    """{dotted module name: file path} for every file of `package` (a directory)."""
    names, top = {}, os.path.basename(os.path.normpath(package))
    for root, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                pieces = [top, *os.path.relpath(path, package).removesuffix(".py").split(os.sep)]
                names[".".join(pieces[:-1] if pieces[-1] == "__init__" else pieces)] = path
    return names


def _imported_modules(node, here, modules):
    """Modules an AST node imports; `here` is the dotted package the file is in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = here[: len(here) - node.level + 1] if node.level else []
        base = ".".join(base + ([node.module] if node.module else []))
        # `from p import m` is an edge to p/m.py when m is a module, else to p/__init__.py
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    func = getattr(node, "func", None)
    called = getattr(func, "id", None) or getattr(func, "attr", None)
    if called in ("import_module", "__import__") and node.args:
        first = node.args[0]  # importlib.import_module("p.m"): a literal name only
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    return []


def _file_edges(package=PACKAGE):
    """{file: files it imports}, every import counted (also inside functions, and
    importlib with a literal name). Importing p.m also runs p/__init__.py; that implicit
    edge to the parent package is not counted, as in ../shared/hooks/layering.py."""
    modules, edges = _module_names(package), {}
    for name, path in modules.items():
        here = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            for target in _imported_modules(node, here, modules):
                if target in modules and modules[target] != path:
                    edges.setdefault(os.path.relpath(path, package), set()).add(
                        os.path.relpath(modules[target], package)
                    )
    return edges


def _cycles(edges):
    """Strongly connected groups of more than one part (Tarjan)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles_between_subpackages():
    assert _cycles(_edges()) == []


def test_cycle_finder_finds_a_cycle():  # the check above can fail
    assert _cycles({"peft": {"training"}, "training": {"transfer"}, "transfer": {"peft"}}) == [
        ["peft", "training", "transfer"]
    ]


def test_no_import_cycles_between_files():
    assert _cycles(_file_edges()) == []


def test_file_cycle_finder_sees_function_level_and_importlib_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.a import f\n")
    (package / "sub" / "a.py").write_text("def f():\n    from . import b\n")
    (package / "sub" / "b.py").write_text("import importlib\nimportlib.import_module('pkg.c')\n")
    (package / "c.py").write_text("from pkg.sub import a\n")
    assert _cycles(_file_edges(str(package))) == [["c.py", "sub/a.py", "sub/b.py"]]


def test_every_import_goes_the_allowed_way():
    edges = _edges()
    unknown = sorted(set(edges) - set(ALLOWED))
    assert not unknown, f"add {unknown} to ALLOWED with its place in the layering"
    wrong = {part: sorted(deps - ALLOWED[part]) for part, deps in edges.items()}
    assert not {k: v for k, v in wrong.items() if v}, wrong


@pytest.mark.parametrize("part", TF_FREE)
def test_model_path_imports_no_tensorflow_at_module_level(part):
    offenders = [
        os.path.relpath(path, PACKAGE)
        for p, path, tree in _modules()
        if p == part
        for name in _imports(tree, path, all_levels=False)
        if name and name.split(".")[0] in ("tensorflow", "tensorflow_text", "tensorflow_datasets")
    ]
    assert not offenders, offenders


def test_training_and_the_image_recipe_import_without_tensorflow():
    """On the JAX backend with TensorFlow made unimportable (as on the GPU machines)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tensorflow_text', 'tensorflow_datasets'):\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        "import ptft_keras, ptft_keras.peft, ptft_keras.transfer, ptft_keras.training\n"
        "import ptft_keras.training.recipes.image\n"
        "print('ok')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    root = os.path.dirname(PACKAGE)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=300
    )
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]


def _registered_classes(parts=("layers", "models")):
    """Classes decorated with `register_keras_serializable` in `parts`, keras-hub's aside."""
    return sorted(
        node.name
        for part, path, tree in _modules()
        if part in parts and not os.path.basename(path).startswith("hub")
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any("register_keras_serializable" in ast.unparse(d) for d in node.decorator_list)
    )


def test_importing_the_package_registers_every_class_without_tensorflow_or_keras_hub():
    """Registration for `.keras` loading happens at the top of the package (no module
    below imports layers/models upward to register them)."""
    import subprocess
    import sys

    names = _registered_classes()
    assert {"Autoencoder", "ConsistencyTrainer", "TransformerBlock"} <= set(names), names
    code = (
        "import sys, keras, ptft_keras\n"
        f"missing = [n for n in {names!r}\n"
        "           if keras.saving.get_registered_object('ptft_keras>' + n) is None]\n"
        "loaded = [m for m in ('tensorflow', 'keras_hub') if m in sys.modules]\n"
        "print(missing, loaded)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(PACKAGE),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[] []", run.stdout
