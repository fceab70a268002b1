"""Outside packages' models and datasets: entry points of the groups ``reprlab.models`` and ``reprlab.datasets``.

This sits in the bottom layer so that both the registry (models) and the data package (datasets) can load
their plugins without importing each other."""

from __future__ import annotations

from .errors import ConfigError


def load_plugins(group: str) -> None:
    """Load every entry point of ``group`` (``reprlab.models``, ``reprlab.datasets``) that outside packages
    declare: loading one imports its module, whose ``@register_model`` / ``@register_dataset`` calls run
    (an entry point may also name a function, which is then called). A plugin that fails to load is a
    ConfigError naming it, its package and the first line of what went wrong."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj()
        except Exception as e:  # a plugin may fail in any way; the user needs its name, not our traceback
            first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:200]
            owner = f" (package {dist})" if dist else ""
            raise ConfigError(
                f"plugin {ep.name!r} = {ep.value!r}{owner} in entry-point group {group} failed to load: "
                f"{e.__class__.__name__}: {first}; fix or uninstall that package"
            ) from None
