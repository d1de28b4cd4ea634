"""Shared export helpers: where an export goes, and when an old one may be replaced."""

import os
import shutil


def prepare_export_dir(path, overwrite=False):
    """Make `path` ready for a new SavedModel and return it as an absolute path.

    If `path` exists, raise `FileExistsError` unless `overwrite=True`. With `overwrite`,
    only an empty directory or a previous SavedModel (a directory holding
    `saved_model.pb`) is removed; anything else (a file, a symlink, another directory,
    the current directory or one of its parents, the home directory) raises
    `ValueError` and nothing is deleted. Parent directories are created.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"Export path must be a non-empty str or path, got {path!r}.")
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(
                f"Export path {path!r} already exists; pass overwrite=True to replace it."
            )
        _check_removable(path)
        shutil.rmtree(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _check_removable(path):
    if os.path.islink(path) or not os.path.isdir(path):
        raise ValueError(
            f"Refusing to overwrite {path!r}: it is not a directory (a file or a symlink); "
            f"remove it yourself or choose another path."
        )
    cwd, home = os.path.abspath(os.getcwd()), os.path.abspath(os.path.expanduser("~"))
    if path in (os.path.abspath(os.sep), home) or cwd == path or cwd.startswith(path + os.sep):
        raise ValueError(f"Refusing to overwrite {path!r}: it is a root, home or working dir.")
    contents = os.listdir(path)
    if contents and "saved_model.pb" not in contents:
        raise ValueError(
            f"Refusing to overwrite {path!r}: it is not a SavedModel directory (no "
            f"saved_model.pb) and not empty; it holds {sorted(contents)[:5]}."
        )
