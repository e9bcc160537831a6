"""Package metadata taken from the addon's manifest, at build time.

The repository root is the addon, so the manifest is the one source of its
version, Odoo series and Python dependencies; manifestoo-core turns them into
package metadata the way the OCA's packaging does. The folder's name is not
used: pip builds from temporary folders of any name.
"""

from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface
from manifestoo_core.metadata import POST_VERSION_STRATEGY_NONE, metadata_from_addon_dir


class AddonManifestMetadataHook(MetadataHookInterface):
    """Fill the dynamic fields of ``[project]`` from ``__manifest__.py``."""

    def update(self, metadata):
        addon = metadata_from_addon_dir(
            Path(self.root),
            {"post_version_strategy_override": POST_VERSION_STRATEGY_NONE},
        )
        metadata["version"] = addon["Version"]
        metadata["dependencies"] = addon.get_all("Requires-Dist", [])
        metadata["classifiers"] = addon.get_all("Classifier", [])
