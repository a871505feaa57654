"""count_launches --sites names asrec's own lines by the package's real location: a checkout
cloned into a folder named ``asrec`` with its venv inside (the README's quickstart) holds
torch's files under ``asrec/.venv/``, and those are not asrec's lines."""

import os

import asrec

from .helpers import load_count_launches

PACKAGE = os.path.dirname(os.path.abspath(asrec.__file__))


def test_files_of_the_imported_package_are_named_from_it():
    counter = load_count_launches()
    assert counter.package_file(os.path.join(PACKAGE, "model.py")) == "asrec/model.py"
    assert counter.package_file(os.path.join(PACKAGE, "ops", "attention.py")) == "asrec/ops/attention.py"


def test_a_folder_named_asrec_elsewhere_is_not_the_package():
    counter = load_count_launches()
    checkout = os.path.dirname(PACKAGE)
    # the venv inside a clone named asrec: torch's files there are not asrec's lines
    torch_file = os.path.join(checkout, ".venv", "lib", "python3.12", "site-packages", "torch", "nn", "modules",
                              "module.py")
    assert counter.package_file(torch_file) is None
    assert counter.package_file(os.path.join(os.sep, "tmp", "asrec", ".venv", "lib", "torch", "functional.py")) is None
    assert counter.package_file(os.path.join(os.sep, "elsewhere", "asrec", "model.py")) is None
    # a sibling whose name starts with the package's folder name is not inside it
    assert counter.package_file(PACKAGE + "_old" + os.sep + "model.py") is None
