import pytest

from mer.registry import Registry, RegistryError


def test_register_get_list_and_contains():
    reg: Registry[int] = Registry("widget")
    reg.register("b", 2)

    @reg.register("a")
    def a():
        return 1

    assert reg.get("a") is a and reg.get("b") == 2
    assert reg.list() == ["a", "b"]
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_duplicate_name_rejected():
    reg: Registry[int] = Registry("widget")
    reg.register("x", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("x", 2)
    assert reg.get("x") == 1


def test_unknown_name_suggests_and_lists():
    reg: Registry[int] = Registry("protocol")
    for name in ("loso-samm-3", "loso-samm-5", "loso-casme2-3"):
        reg.register(name, 0)
    with pytest.raises(RegistryError) as e:
        reg.get("loso-sam-3")
    msg = str(e.value)
    assert "Did you mean 'loso-samm-3'" in msg
    assert "Valid protocols: loso-casme2-3, loso-samm-3, loso-samm-5" in msg


def test_builtin_registries_are_populated():
    from mer.protocols.datasets import DATASETS
    from mer.protocols.protocol import PROTOCOLS
    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    assert {"chance", "majority", "lbptop-svm"} <= set(MODELS.list())
    assert "loso-synth-3" in PROTOCOLS
    assert "synthme" in DATASETS
