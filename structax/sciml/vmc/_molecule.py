"""Molecules for variational Monte Carlo: atoms, positions (bohr), charge and spin; presets and a text format."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Molecule", "MoleculeError", "ELEMENTS", "PRESETS", "REFERENCE_ENERGIES", "molecule", "parse_molecule",
           "reference_energy"]

ANGSTROM = 1.0 / 0.529177210903  # bohr per angstrom (CODATA 2018)

#: Nuclear charge of the elements the presets and the text format know (H to Ne).
ELEMENTS: dict[str, int] = {"H": 1, "He": 2, "Li": 3, "Be": 4, "B": 5, "C": 6, "N": 7, "O": 8, "F": 9, "Ne": 10}

#: Presets in the text format of :func:`parse_molecule` (positions in bohr).
PRESETS: dict[str, str] = {
    "H": "H 0 0 0",
    "He": "He 0 0 0",
    "Li": "Li 0 0 0",
    "Be": "Be 0 0 0",
    "H2": "H 0 0 -0.7\nH 0 0 0.7",
    "LiH": "Li 0 0 0\nH 0 0 3.015",
}

#: Exact or near-exact non-relativistic ground-state energies (Ha) of the presets, with their source.
REFERENCE_ENERGIES: dict[str, tuple[float, str]] = {
    "H": (-0.5, "exact"),
    "He": (-2.903724, "Pekeris (1959); Drake, Springer Handbook of Atomic Physics (2006)"),
    "Li": (-7.478060, "Puchalski & Pachucki, PRA 73, 022503 (2006), Hylleraas"),
    "Be": (-14.667356, "Puchalski, Komasa & Pachucki, PRA 87, 030502 (2013), ECG"),
    "H2": (-1.174475, "Kolos & Wolniewicz (1968) at R = 1.4 bohr; Pachucki (2010)"),
    "LiH": (-8.070548, "Cencek & Rychlewski, CPL 320, 549 (2000), ECG at R = 3.015 bohr"),
}


class MoleculeError(ValueError):
    """A molecule specification that cannot describe a physical system."""


@dataclass(frozen=True)
class Molecule:
    """Nuclei (fixed, Born–Oppenheimer) and the electron count of a molecule.

    Parameters
    ----------
    symbols : tuple of str
        Element symbols, one per nucleus (``"H"`` to ``"Ne"``).
    positions : array_like, shape (n_atoms, 3)
        Nuclear positions in bohr.
    charge : int, default 0
        Total charge; the electron count is ``sum(Z) - charge``.
    spin : int, optional
        ``n_up - n_down`` (twice the total spin S). Default: 0 for an even electron count, 1 for odd.
    name : str, optional

    Examples
    --------
    >>> from structax.sciml.vmc import Molecule
    >>> m = Molecule(("H", "H"), [[0, 0, -0.7], [0, 0, 0.7]])
    >>> m.n_electrons, m.n_up, m.n_down
    (2, 1, 1)
    >>> round(m.nuclear_repulsion, 6)
    0.714286
    """

    symbols: tuple[str, ...]
    positions: np.ndarray
    charge: int = 0
    spin: int | None = None
    name: str = field(default="", compare=False)

    def __post_init__(self):
        symbols = tuple(str(s) for s in ((self.symbols,) if isinstance(self.symbols, str) else self.symbols))
        if not symbols:
            raise MoleculeError("symbols: expected at least one atom, received none")
        for s in symbols:
            if s not in ELEMENTS:
                raise MoleculeError(f"symbols: unknown element {s!r}; known elements are {', '.join(ELEMENTS)}")
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim == 1 and pos.size == 3:
            pos = pos[None]
        if pos.shape != (len(symbols), 3):
            raise MoleculeError(f"positions: expected shape ({len(symbols)}, 3) in bohr, received {pos.shape}")
        if not np.all(np.isfinite(pos)):
            bad = sorted({int(i) for i in np.argwhere(~np.isfinite(pos))[:, 0]})
            raise MoleculeError(f"positions: non-finite coordinates for atom(s) {bad} "
                                f"({', '.join(symbols[i] for i in bad)}); all positions must be finite numbers")
        for i in range(len(symbols)):
            for j in range(i):
                d = float(np.linalg.norm(pos[i] - pos[j]))
                if d < 1e-6:
                    raise MoleculeError(f"positions: atoms {j} ({symbols[j]}) and {i} ({symbols[i]}) are at the "
                                        f"same place {pos[i].tolist()} (distance {d:.2e} bohr); nuclei must be apart")
        if int(self.charge) != self.charge:
            raise MoleculeError(f"charge: expected an integer, received {self.charge!r}")
        n_el = sum(ELEMENTS[s] for s in symbols) - int(self.charge)
        if n_el < 1:
            raise MoleculeError(f"charge: {self.charge} leaves {n_el} electrons; at least one is needed")
        spin = n_el % 2 if self.spin is None else self.spin
        if int(spin) != spin or spin < 0 or spin > n_el or (n_el - spin) % 2:
            raise MoleculeError(f"spin: n_up - n_down = {spin} does not fit {n_el} electrons; expected one of "
                                f"{list(range(n_el % 2, n_el + 1, 2))}")
        pos.setflags(write=False)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "charge", int(self.charge))
        object.__setattr__(self, "spin", int(spin))

    @property
    def charges(self) -> np.ndarray:
        """Nuclear charges Z, shape (n_atoms,)."""
        return np.array([ELEMENTS[s] for s in self.symbols], dtype=np.float64)

    @property
    def n_electrons(self) -> int:
        return int(self.charges.sum()) - self.charge

    @property
    def n_up(self) -> int:
        return (self.n_electrons + self.spin) // 2

    @property
    def n_down(self) -> int:
        return (self.n_electrons - self.spin) // 2

    @property
    def nuclear_repulsion(self) -> float:
        """Σ_{I<J} Z_I Z_J / |R_I − R_J| in Ha."""
        z, r = self.charges, self.positions
        return float(sum(z[i] * z[j] / np.linalg.norm(r[i] - r[j]) for i in range(len(z)) for j in range(i)))

    def __hash__(self):
        return hash((self.symbols, self.positions.tobytes(), self.charge, self.spin))

    def __eq__(self, other):
        return (isinstance(other, Molecule) and self.symbols == other.symbols and self.charge == other.charge
                and self.spin == other.spin and np.array_equal(self.positions, other.positions))


def parse_molecule(text: str, *, name: str = "") -> Molecule:
    """A molecule from XYZ-like text.

    One atom per line, ``Symbol x y z`` (bohr). Optional lines ``charge = q``, ``spin = s``
    (n_up − n_down) and ``units = angstrom`` (or ``bohr``, the default); ``#`` starts a comment;
    a standard XYZ file (count line, comment line, then atoms in ångström) is read as well.

    Examples
    --------
    >>> from structax.sciml.vmc import parse_molecule
    >>> m = parse_molecule('''
    ... # lithium hydride
    ... Li 0 0 0
    ... H  0 0 3.015
    ... ''')
    >>> m.symbols, m.n_electrons
    (('Li', 'H'), 4)
    """
    lines = [ln.split("#", 1)[0].strip() for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln]
    opts: dict[str, str] = {}
    if lines and lines[0].isdigit():  # standard XYZ: count, comment, atoms in angstrom
        count = int(lines[0])
        body = text.strip().splitlines()[2:2 + count]
        lines = [ln.strip() for ln in body if ln.strip()]
        opts["units"] = "angstrom"
    symbols, coords = [], []
    for k, ln in enumerate(lines):
        if "=" in ln:
            key, value = (p.strip() for p in ln.split("=", 1))
            if key.lower() not in ("charge", "spin", "units"):
                raise MoleculeError(f"line {k + 1}: unknown option {key!r}; expected charge, spin or units")
            opts[key.lower()] = value
            continue
        parts = ln.replace(",", " ").split()
        if len(parts) != 4:
            raise MoleculeError(f"line {k + 1}: expected 'Symbol x y z', received {ln!r}")
        symbol = parts[0][:1].upper() + parts[0][1:].lower()
        try:
            coords.append([float(p) for p in parts[1:]])
        except ValueError:
            raise MoleculeError(f"line {k + 1}: coordinates must be numbers, received {ln!r}") from None
        symbols.append(symbol)
    units = opts.get("units", "bohr").lower()
    if units not in ("bohr", "angstrom"):
        raise MoleculeError(f"units: expected 'bohr' or 'angstrom', received {units!r}")
    pos = np.array(coords, dtype=np.float64).reshape(-1, 3) * (ANGSTROM if units == "angstrom" else 1.0)
    try:
        charge = int(opts.get("charge", 0))
        spin = int(opts["spin"]) if "spin" in opts else None
    except ValueError:
        raise MoleculeError(f"charge/spin must be integers, received {opts}") from None
    return Molecule(tuple(symbols), pos, charge=charge, spin=spin, name=name)


def molecule(system: "str | Molecule") -> Molecule:
    """A preset by name (``H, He, Li, Be, H2, LiH``, any case), a path to a molecule file, or molecule text.

    Examples
    --------
    >>> from structax.sciml.vmc import molecule
    >>> molecule("lih").positions[1].tolist()
    [0.0, 0.0, 3.015]
    """
    if isinstance(system, Molecule):
        return system
    if not isinstance(system, str):
        raise MoleculeError(f"system: expected a preset name, a file path or a Molecule, received {type(system).__name__}")
    presets = {k.lower(): k for k in PRESETS}
    if system.lower() in presets:
        key = presets[system.lower()]
        return parse_molecule(PRESETS[key], name=key)
    import os

    if os.path.isfile(system):
        with open(system, encoding="utf-8") as fh:
            return parse_molecule(fh.read(), name=os.path.splitext(os.path.basename(system))[0])
    if "\n" in system or len(system.split()) == 4:
        return parse_molecule(system)
    raise MoleculeError(f"system: {system!r} is neither a preset ({', '.join(PRESETS)}) nor an existing file")


def reference_energy(mol: Molecule) -> float:
    """The reference energy of a preset, or NaN."""
    ref = REFERENCE_ENERGIES.get(mol.name)
    return ref[0] if ref else math.nan
