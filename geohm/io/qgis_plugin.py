"""Install geohm's QGIS plugin (a Processing provider) into a QGIS profile.

The plugin's files ship inside the package, in ``geohm/io/qgis_provider/`` (a checkout
and an installed wheel alike: its ``.py`` files as the package ``geohm.io.qgis_provider``,
``metadata.txt`` and ``icon.svg`` as package data). :func:`install_plugin` copies them
into ``<profile>/python/plugins/geohm``, where QGIS finds the plugin ``geohm``; it sets
the plugin's version to geohm's and records this geohm's command line
(``geohm_command.json``), which the plugin runs when neither its setting nor
``GEOHM_EXECUTABLE`` names a geohm program, since QGIS's Python is not this one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from filecmp import cmpfiles, dircmp
from pathlib import Path

from geohm._version import __version__
from geohm.errors import InputError, OutputError
from geohm.io.outlock import os_reason

__all__ = ["PLUGIN_NAME", "default_profile", "install_plugin", "plugin_source"]

#: The plugin's folder name in a profile, and its package name in QGIS's Python.
PLUGIN_NAME = "geohm"
#: The file, in the installed plugin, naming the geohm command that installed it.
COMMAND_FILE = "geohm_command.json"  # = geohm/io/qgis_provider/process.py's COMMAND_FILE
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def plugin_source() -> Path:
    """The folder of the plugin's files as geohm ships them.

    Returns
    -------
    Path
        ``geohm/io/qgis_provider`` of this installation.

    Raises
    ------
    InputError
        The folder or its ``metadata.txt`` is missing (a broken installation).
    """
    source = Path(__file__).resolve().parent / "qgis_provider"
    if not (source / "metadata.txt").is_file() or not (source / "__init__.py").is_file():
        raise InputError(
            f"the QGIS plugin's files are missing from {source} (no metadata.txt or "
            "__init__.py); reinstall geohm (pip install --force-reinstall geohm)"
        )
    return source


def default_profile() -> Path:
    """The folder of QGIS 3's default user profile on this system.

    Linux: ``$XDG_DATA_HOME/QGIS/QGIS3/profiles/default`` (``~/.local/share`` when
    unset); macOS: ``~/Library/Application Support/QGIS/QGIS3/profiles/default``;
    Windows: ``%APPDATA%/QGIS/QGIS3/profiles/default``.

    Returns
    -------
    Path
        The profile folder (it may not exist before QGIS first starts).
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "QGIS" / "QGIS3" / "profiles" / "default"


def _this_geohm() -> list[str]:
    """The command line that runs this geohm from any Python: its interpreter, ``-m``."""
    return [sys.executable, "-m", "geohm.cli"]


def _stage(source: Path, staged: Path, command: Sequence[str]) -> None:
    """Copy the plugin into ``staged`` with geohm's version and the recorded command."""
    shutil.copytree(source, staged, ignore=_IGNORE)
    metadata = staged / "metadata.txt"
    lines = metadata.read_text(encoding="utf-8").splitlines()
    lines = [f"version={__version__}" if ln.startswith("version=") else ln for ln in lines]
    metadata.write_text("\n".join(lines) + "\n", encoding="utf-8")
    record = {"command": list(command), "geohm_version": __version__}
    (staged / COMMAND_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _same_tree(a: Path, b: Path) -> bool:
    """Whether two folders hold the same files with the same contents (``__pycache__`` aside)."""
    cmp = dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def install_plugin(
    profile: Path | None = None,
    *,
    force: bool = False,
    command: Sequence[str] | None = None,
) -> Path:
    """Copy geohm's QGIS plugin into a QGIS profile, as ``python/plugins/geohm``.

    The copy is made beside the destination and renamed into place, so QGIS never sees
    half a plugin. Installing the same files again changes nothing; different files
    already there (another geohm version's plugin, or edited files) are replaced only
    with ``force``. QGIS loads the plugin when it next starts and it is enabled
    (*Plugins > Manage and Install Plugins > Installed > geohm*).

    Parameters
    ----------
    profile : Path, optional
        A QGIS profile folder (one under ``.../QGIS/QGIS3/profiles/``), which must exist.
        Default: :func:`default_profile` (created if QGIS never started).
    force : bool
        Replace a ``geohm`` plugin folder (or link) that differs from this one.
    command : sequence of str, optional
        The geohm command line the plugin runs by default (recorded in
        ``geohm_command.json``). Default: this Python with ``-m geohm.cli``.

    Returns
    -------
    Path
        The installed plugin folder, ``<profile>/python/plugins/geohm``.

    Raises
    ------
    InputError
        ``profile`` is not an existing folder, or the plugin's files are missing.
    OutputError
        A different ``geohm`` plugin is there and ``force`` is False, or the profile
        cannot be written (the message names the folder and the reason).
    """
    source = plugin_source()
    if profile is None:
        profile = default_profile()
    elif not Path(profile).is_dir():
        raise InputError(
            f"QGIS profile folder '{profile}' does not exist; give --profile a folder such "
            f"as {default_profile()} (QGIS: Settings > User Profiles > Open Active Profile "
            "Folder)"
        )
    plugins = Path(os.path.abspath(profile)) / "python" / "plugins"
    dest = plugins / PLUGIN_NAME
    staged = plugins / f".{PLUGIN_NAME}.{secrets.token_hex(4)}.tmp"
    old = plugins / f".{PLUGIN_NAME}.{secrets.token_hex(4)}.old"
    try:
        plugins.mkdir(parents=True, exist_ok=True)
        _stage(source, staged, _this_geohm() if command is None else command)
        exists = dest.is_symlink() or dest.exists()
        if exists and not dest.is_symlink() and dest.is_dir() and _same_tree(staged, dest):
            return dest
        if exists and not force:
            raise OutputError(
                f"a different QGIS plugin folder '{dest}' is already there (another "
                "geohm version's plugin, or edited files); --force replaces it"
            )
        if dest.is_symlink():
            dest.unlink()  # a link to a checkout: remove the link, never its target
        elif exists:
            os.replace(dest, old)
        os.replace(staged, dest)
    except OSError as exc:
        raise OutputError(
            f"cannot install the QGIS plugin into '{plugins}': {os_reason(exc)}; give "
            "--profile a QGIS profile folder you can write to"
        ) from None
    finally:
        for leftover in (staged, old):
            try:
                _remove(leftover)
            except OSError:
                pass
    return dest
