"""Everything is in pyproject.toml but the start-up hook's ``.pth`` (mmkd_startup.py says what it does).

setuptools installs a top-level ``.pth`` only from the build it is given, so ``build_py`` writes it:
into the wheel's root for a regular build, and into the editable wheel (``pip install -e``, what
``make setup`` does) through ``install_lib``, where setuptools assembles that wheel. Either way the
file is in the wheel's RECORD, so ``pip uninstall mmkd`` removes it.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = 'mmkd-startup.pth'
# site runs .pth lines that start with "import"; install() reads MMKD_STARTUP_HOOK.
PTH_LINE = 'import mmkd_startup; mmkd_startup.install()\n'


class BuildWithStartupHook(build_py):

    def run(self):
        super().run()
        root = self.get_finalized_command('install').install_lib if self.editable_mode else self.build_lib
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, PTH_NAME), 'w') as f:
            f.write(PTH_LINE)

    def get_outputs(self, *args, **kwargs):
        outputs = super().get_outputs(*args, **kwargs)
        return outputs if self.editable_mode else [*outputs, os.path.join(self.build_lib, PTH_NAME)]


setup(cmdclass={'build_py': BuildWithStartupHook})
