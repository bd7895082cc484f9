"""The bad-input corpus: files and command lines that clinsynth must refuse cleanly.

Every case is a small folder of input files (written by the functions below, so nothing big is
committed) and a ``clinsynth`` command line over them. ``tests/bad_inputs/test_bad_inputs.py``
runs each one and requires: exit code 2, one ``Error:`` line that matches the case's pattern
(what, where, how to fix), no traceback, no file left at the output path, and the folder exactly
as it was (inputs untouched, nothing written beside them).

Write the corpus to a folder to try it by hand::

    python tests/bad_inputs/corpus.py /tmp/bad_inputs
    clinsynth $(cat /tmp/bad_inputs/fit_output_is_input/ARGS)

Tampered model bundles start from small models fitted once (``Models``) and are changed in one
way each (``tamper_*``): wrong shapes, missing or huge weights, huge network sizes, a copula
correlation of the wrong size, ``num_training_rows: 10**12``, traversal names, truncated files,
zip bombs.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

Writer = Callable[[Path, "Models"], None]


# --------------------------------------------------------------------------- base data
def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A small patient table: a number with one decimal, a whole number, a category."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(20, 90, n),
            "bmi": np.round(rng.normal(27, 4, n), 1),
            "sex": rng.choice(["F", "M"], n),
        }
    )


def schema(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame({"patient_id": np.arange(60), "age": rng.integers(20, 90, 60)})
    visits = pd.DataFrame(
        {
            "visit_id": np.arange(150),
            "patient_id": rng.integers(0, 60, 150),
            "cost": np.round(rng.gamma(2.0, 300.0, 150), 2),
        }
    )
    return {"patients": patients, "visits": visits}


class Models:
    """Small models fitted once, copied into the cases that tamper with them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def path(self, kind: str) -> Path:
        if kind not in self._made:
            self._made[kind] = self._fit(kind)
        return self._made[kind]

    def _fit(self, kind: str) -> Path:
        from clinsynth import GaussianCopulaSynthesizer, Metadata, get_synthesizer

        out = self.root / f"_model_{kind}"
        df = table()
        md = Metadata.detect_from_dataframe(df)
        if kind == "copula":
            GaussianCopulaSynthesizer(md, random_state=0).fit(df).save(out)
        elif kind == "copula_zip":
            out = out.with_suffix(".zip")
            GaussianCopulaSynthesizer(md, random_state=0).fit(df).save(out)
        elif kind == "tvae":
            model = get_synthesizer("tvae")(
                md, epochs=1, batch_size=100, compress_dims=(16,), decompress_dims=(16,),
                embedding_dim=8, random_state=0,
            )  # fmt: skip
            model.fit(df).save(out)
        elif kind == "dp_marginal":
            get_synthesizer("dp_marginal")(md, epsilon=5.0, random_state=0).fit(df).save(out)
        elif kind == "hma":
            from clinsynth.multitable import HMASynthesizer

            tables = schema()
            HMASynthesizer(Metadata.detect_from_dataframes(tables), random_state=0).fit(
                tables
            ).save(out)
        else:  # pragma: no cover - a typo in a case
            raise ValueError(kind)
        return out


# --------------------------------------------------------------------------- writers
def text(content: str | bytes, encoding: str = "utf-8") -> Writer:
    def write(path: Path, models: Models) -> None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))

    return write


def frame(df: pd.DataFrame | Callable[[], pd.DataFrame]) -> Writer:
    """A DataFrame written in the format of the file's suffix."""

    def write(path: Path, models: Models) -> None:
        data = df() if callable(df) else df
        if path.suffix == ".parquet":
            data.to_parquet(path, index=False)
        elif path.suffix == ".xlsx":
            data.to_excel(path, index=False)
        else:
            data.to_csv(path, index=False)

    return write


def folder(tables: dict[str, pd.DataFrame]) -> Writer:
    def write(path: Path, models: Models) -> None:
        path.mkdir()
        for name, df in tables.items():
            df.to_csv(path / f"{name}.csv", index=False)

    return write


def metadata(doc: dict | str) -> Writer:
    def write(path: Path, models: Models) -> None:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")

    return write


def model(kind: str, tamper: Callable[[Path], None] | None = None) -> Writer:
    """A copy of a fitted model, changed by ``tamper``."""

    def write(path: Path, models: Models) -> None:
        source = models.path(kind)
        if source.is_dir():
            shutil.copytree(source, path)
        else:
            shutil.copyfile(source, path)
        if tamper is not None:
            tamper(path)

    return write


def duckdb_schema(tables: dict[str, pd.DataFrame]) -> Writer:
    def write(path: Path, models: Models) -> None:
        import duckdb

        con = duckdb.connect(str(path))
        try:
            for name, df in tables.items():
                con.register("frame", df)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
                con.unregister("frame")
        finally:
            con.close()

    return write


# --------------------------------------------------------------------------- tampering
def edit_json(member: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(bundle: Path) -> None:
        path = bundle / member
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))

    return tamper


def edit_tensors(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(bundle: Path) -> None:
        import torch

        tensors = torch.load(bundle / "weights.pt", weights_only=True)
        change(tensors)
        torch.save(tensors, bundle / "weights.pt")

    return tamper


def _set(path: list[str | int], value: object) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def _first_weight(change: Callable[[dict, str], None]) -> Callable[[dict], None]:
    def apply(tensors: dict) -> None:
        key = next(k for k in tensors if k.endswith("weight"))
        change(tensors, key)

    return apply


def _wrong_shape(tensors: dict, key: str) -> None:
    import torch

    tensors[key] = torch.zeros(tensors[key].shape[0] + 3, tensors[key].shape[1])


def _drop(tensors: dict, key: str) -> None:
    del tensors[key]


def _huge(tensors: dict, key: str) -> None:
    import torch

    tensors[key] = torch.zeros(3000, 3000)  # 36 MB where the network has a small layer


def _nan(tensors: dict, key: str) -> None:
    tensors[key] = tensors[key] * float("nan")


def _wrong_correlation(tensors: dict) -> None:
    import torch

    tensors["correlation_0"] = torch.eye(7, dtype=torch.float64)


def _not_a_correlation(tensors: dict) -> None:
    tensors["correlation_0"] = tensors["correlation_0"] * 5.0


def _rename_table(doc: dict) -> None:
    """A shared multi-table model whose table would be written two folders up."""
    evil = "../../ESCAPED_patients"
    for key in ("metadata", "metadata_used"):
        doc[key]["tables"][evil] = doc[key]["tables"].pop("patients")
    doc["tables"][evil] = doc["tables"].pop("patients")


def zip_member(name: str, content: bytes, *, compress: bool = True) -> Callable[[Path], None]:
    """Add a member to a zip bundle (``name`` may be a traversal path)."""

    def tamper(bundle: Path) -> None:
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(bundle, "a", method) as zf:
            zf.writestr(name, content)

    return tamper


def zip_bomb(member: str = "weights.pt", mb: int = 200) -> Callable[[Path], None]:
    """Replace ``member`` by ``mb`` MB of zeros (deflated to a few hundred KB)."""

    def tamper(bundle: Path) -> None:
        with zipfile.ZipFile(bundle) as zf:
            kept = {n: zf.read(n) for n in zf.namelist() if n != member}
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, raw in kept.items():
                zf.writestr(name, raw)
            with zf.open(member, "w", force_zip64=True) as out:
                zeros = bytes(2**20)
                for _ in range(mb):
                    out.write(zeros)

    return tamper


def declare_size(member: str, size: int) -> Callable[[Path], None]:
    """Rewrite the uncompressed size a zip's central directory declares for ``member``."""

    def tamper(bundle: Path) -> None:
        raw = bytearray(bundle.read_bytes())
        name = member.encode()
        at = raw.find(b"PK\x01\x02")
        while at >= 0:
            length = struct.unpack_from("<H", raw, at + 28)[0]
            if bytes(raw[at + 46 : at + 46 + length]) == name:
                struct.pack_into("<I", raw, at + 24, size)
            at = raw.find(b"PK\x01\x02", at + 4)
        bundle.write_bytes(bytes(raw))

    return tamper


def truncate(fraction: float) -> Callable[[Path], None]:
    def tamper(bundle: Path) -> None:
        target = bundle / "weights.pt" if bundle.is_dir() else bundle
        raw = target.read_bytes()
        target.write_bytes(raw[: int(len(raw) * fraction)])

    return tamper


# --------------------------------------------------------------------------- the cases
@dataclass
class Case:
    """One bad input: the files of its folder, the command line ({d}: the folder) and a
    pattern the error line must match."""

    name: str
    args: list[str]
    expect: str
    files: dict[str, Writer] = field(default_factory=dict)
    needs: str | None = None  # an optional module the case needs (skipped without it)

    def command(self, folder: Path) -> list[str]:
        return [a.replace("{d}", str(folder)) for a in self.args]


GOOD = frame(table)
_SAMPLE = ["sample", "{d}/model", "-n", "5", "-o", "{d}/out.csv"]


def _bad_metadata(**column: dict) -> dict:
    columns = {"age": {"sdtype": "numerical"}, "bmi": {"sdtype": "numerical"}}
    columns["sex"] = {"sdtype": "categorical"}
    columns.update(column)
    return {"tables": {"table": {"columns": columns}}}


def _fit(data: str = "{d}/data.csv", *extra: str) -> list[str]:
    return ["fit", data, "-o", "{d}/model", "-q", *extra]


CASES: list[Case] = [
    # ---- files that are not tables
    Case("empty_file", _fit(), "is empty", {"data.csv": text("")}),
    Case("header_only", _fit(), "no data rows", {"data.csv": text("age,bmi,sex\n")}),
    Case("binary_file", _fit(), "binary", {"data.csv": text(b"\x89PNG\r\n\x1a\n\x00\x00\x00")}),
    Case("missing_file", _fit("{d}/nope.csv"), "does not exist"),
    Case("unsupported_type", _fit("{d}/data.json"), "unsupported type", {"data.json": text("{}")}),
    Case("folder_without_csv", _fit("{d}/empty"), "no .csv files", {"empty": folder({})}),
    Case(
        "duplicate_headers",
        _fit(),
        "duplicate column names",
        {"data.csv": text("age,age,sex\n1,2,F\n3,4,M\n")},
    ),
    Case(
        "ragged_rows",
        _fit(),
        "not a well-formed table",
        {"data.csv": text("age,bmi,sex\n1,2,F\n3,4,M,9,9,9\n" + "5,6,F\n" * 5)},
    ),
    Case(
        "html_saved_as_csv",
        _fit(),
        "does not look like a table",
        {"data.csv": text("<html><body>" + "x" * 300 + "</body></html>\n<p>1</p>\n")},
    ),
    Case(
        "huge_header_cell",
        _fit(),
        "does not look like a table",
        {"data.csv": text("x" * 2_000_000 + "\n1\n2\n")},
    ),
    Case(
        "damaged_excel",
        _fit("{d}/data.xlsx"),
        "could not be read as Excel",
        {"data.xlsx": text(b"PK\x03\x04 not really a workbook")},
    ),  # fmt: skip
    Case(
        "damaged_parquet",
        _fit("{d}/data.parquet"),
        "could not be read as Parquet",
        {"data.parquet": text(b"PAR1 not really parquet PAR1")},
    ),  # fmt: skip
    Case(
        "excel_unknown_sheet",
        _fit("{d}/data.xlsx", "--sheet", "visits"),
        "no sheet 'visits'",
        {"data.xlsx": frame(table)},
    ),
    Case(
        "nested_parquet",
        _fit("{d}/data.parquet"),
        "nested values",
        {"data.parquet": frame(lambda: table().assign(tags=[[1, 2]] * 200))},
    ),
    # ---- tables that cannot be learned
    Case(
        "one_row",
        _fit(),
        "1 row",
        {"data.csv": frame(lambda: table().head(1))},
    ),
    Case(
        "only_identifiers",
        _fit(),
        "nothing to learn",
        {"data.csv": frame(pd.DataFrame({"patient_id": range(50), "visit_id": range(50)}))},
    ),
    Case(
        "declared_number_holds_words",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "declared numerical",
        {
            "data.csv": frame(lambda: table().assign(age=["old"] * 100 + ["young"] * 100)),
            "md.json": metadata(_bad_metadata()),
        },
    ),
    Case(
        "declared_date_holds_words",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "declared datetime",
        {
            "data.csv": frame(lambda: table().assign(when=["soon"] * 200)),
            "md.json": metadata(
                _bad_metadata(when={"sdtype": "datetime", "datetime_format": "%Y-%m-%d"})
            ),
        },
    ),
    Case(
        "free_text_as_category",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "free text",
        {
            "data.csv": frame(
                lambda: table().assign(
                    note=[
                        f"patient {i} was seen today for a long follow-up visit" for i in range(200)
                    ]
                )
            ),
            "md.json": metadata(_bad_metadata(note={"sdtype": "categorical"})),
        },
    ),
    # ---- metadata files
    Case(
        "metadata_not_json",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "not valid JSON",
        {"data.csv": GOOD, "md.json": metadata("{'tables': ")},
    ),
    Case(
        "metadata_nested_200000_deep",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "nested deeper than",
        {"data.csv": GOOD, "md.json": metadata("[" * 200_000 + "]" * 200_000)},
    ),
    Case(
        "metadata_10mb_string",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        r"xxxx\.\.\. \(10,000,0\d\d characters\)",
        {"data.csv": GOOD, "md.json": metadata(_bad_metadata(age={"sdtype": "x" * 10_000_000}))},
    ),
    Case(
        "metadata_unknown_column",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "not in the",
        {"data.csv": GOOD, "md.json": metadata(_bad_metadata(weight={"sdtype": "numerical"}))},
    ),
    Case(
        "metadata_table_name_traversal",
        _fit("{d}/data.csv", "-m", "{d}/md.json"),
        "cannot be a file name",
        {
            "data.csv": GOOD,
            "md.json": metadata({"tables": {"../../ESCAPED": _bad_metadata()["tables"]["table"]}}),
        },
    ),
    Case(
        "relationship_cycle",
        _fit("{d}/tables", "-m", "{d}/md.json"),
        "cycle",
        {
            "tables": folder(
                {
                    "a": pd.DataFrame({"a_id": range(30), "b_id": [i % 10 for i in range(30)]}),
                    "b": pd.DataFrame({"b_id": range(10), "a_id": range(10)}),
                }
            ),
            "md.json": metadata(
                {
                    "tables": {
                        "a": {
                            "columns": {"a_id": {"sdtype": "id"}, "b_id": {"sdtype": "id"}},
                            "primary_key": "a_id",
                        },
                        "b": {
                            "columns": {"b_id": {"sdtype": "id"}, "a_id": {"sdtype": "id"}},
                            "primary_key": "b_id",
                        },
                    },
                    "relationships": [
                        {
                            "parent_table_name": "a",
                            "parent_primary_key": "a_id",
                            "child_table_name": "b",
                            "child_foreign_key": "a_id",
                        },
                        {
                            "parent_table_name": "b",
                            "parent_primary_key": "b_id",
                            "child_table_name": "a",
                            "child_foreign_key": "b_id",
                        },
                    ],
                }
            ),
        },
    ),
    Case(
        "schema_dates_after_2262",
        _fit("{d}/tables"),
        "dates outside 1677-2262",
        {
            "tables": folder(
                {
                    name: df.assign(
                        seen=np.datetime_as_string(
                            np.datetime64("2300-01-01") + np.arange(len(df)) * 11, unit="D"
                        )
                    )
                    for name, df in schema().items()
                }
            )
        },
    ),
    Case(
        "null_in_primary_key",
        _fit("{d}/tables", "-m", "{d}/md.json"),
        "missing",
        {
            "tables": folder(
                {
                    "patients": pd.DataFrame(
                        {"pid": [i or None for i in range(20)], "age": range(20)}
                    )
                }
            ),
            "md.json": metadata(
                {
                    "tables": {
                        "patients": {
                            "columns": {"pid": {"sdtype": "id"}, "age": {"sdtype": "numerical"}},
                            "primary_key": "pid",
                        }
                    }
                }
            ),
        },
    ),
    # ---- command lines
    Case(
        "fit_output_is_input",
        ["fit", "{d}/x.csv", "-o", "{d}/x.csv", "-q"],
        "also an input",
        {"x.csv": GOOD},
    ),  # fmt: skip
    Case(
        "fit_output_holds_input",
        ["fit", "{d}/tables/patients.csv", "-o", "{d}/tables", "-q"],
        "holds the input",
        {"tables": folder({"patients": table()})},
    ),
    Case(
        "fit_output_overwrites_other_file",
        ["fit", "{d}/data.csv", "-o", "{d}/notes.txt", "-q"],
        "not a clinsynth model",
        {"data.csv": GOOD, "notes.txt": text("my notes\n")},
    ),
    Case(
        "output_under_a_file",
        ["fit", "{d}/data.csv", "-o", "{d}/data.csv/model", "-q"],
        "is a file, not a folder",
        {"data.csv": GOOD},
    ),
    Case(
        "unknown_param",
        _fit("{d}/data.csv", "--param", "bogus=1"),
        "no parameter 'bogus'",
        {"data.csv": GOOD},
    ),  # fmt: skip
    Case(
        "param_without_value",
        _fit("{d}/data.csv", "--param", "epochs"),
        "NAME=VALUE",
        {"data.csv": GOOD},
    ),  # fmt: skip
    Case("unknown_model", _fit("{d}/data.csv", "--model", "gpt"), "gpt", {"data.csv": GOOD}),
    Case(
        "bad_epochs",
        _fit("{d}/data.csv", "--model", "tvae", "--epochs", "0"),
        "epochs",
        {"data.csv": GOOD},
    ),
    Case(
        "condition_syntax",
        [*_SAMPLE, "-c", "age>>=5"],
        "Cannot read condition",
        {"model": model("copula")},
    ),
    Case(
        "condition_contradiction",
        [*_SAMPLE, "-c", "sex=F", "-c", "sex=M"],
        "contradict",
        {"model": model("copula")},
    ),
    Case(
        "condition_word_for_number",
        [*_SAMPLE, "-c", "age=old"],
        "must be a number",
        {"model": model("copula")},
    ),
    Case(
        "condition_finer_than_data",
        [*_SAMPLE, "-c", "bmi=27.123456"],
        "rounded to 1 decimal",
        {"model": model("copula")},
    ),
    Case(
        "condition_outside_range",
        [*_SAMPLE, "-c", "age=300"],
        "outside the values seen",
        {"model": model("copula")},
    ),
    Case(
        "condition_unknown_level",
        [*_SAMPLE, "-c", "sex=X"],
        "never seen",
        {"model": model("copula")},
    ),
    Case(
        "condition_strict_operator",
        [*_SAMPLE, "-c", "age>60"],
        "strict",
        {"model": model("copula")},
    ),
    Case(
        "condition_unknown_column",
        [*_SAMPLE, "-c", "zodiac=leo"],
        "not a column",
        {"model": model("copula")},
    ),
    Case(
        "condition_too_rare_for_rejection",
        [*_SAMPLE[:3], "1000", *_SAMPLE[4:], "-c", "age=21", "-c", "bmi=33.3"],
        "acceptance rate",
        {"model": model("copula")},
    ),
    Case(
        "ten_billion_rows",
        ["sample", "{d}/model", "-n", "10000000000", "-o", "{d}/out.csv"],
        "needs about .* of disk",
        {"model": model("copula")},
    ),
    Case(
        "schema_at_a_huge_scale",
        ["sample", "{d}/model", "--scale", "100000000", "-o", "{d}/out"],
        "needs about .* of memory",
        {"model": model("hma")},
    ),
    Case(
        "negative_scale",
        ["sample", "{d}/model", "--scale", "-1", "-o", "{d}/out.csv"],
        "must be a number >= 0",
        {"model": model("copula")},
    ),
    Case(
        "sample_output_unsupported",
        ["sample", "{d}/model", "-n", "5", "-o", "{d}/out.txt"],
        "unsupported type",
        {"model": model("copula")},
    ),
    Case(
        "sample_output_is_a_folder",
        ["sample", "{d}/model", "-n", "5", "-o", "{d}/taken.csv"],
        "is a folder",
        {"model": model("copula"), "taken.csv": folder({"keep": table(5)})},
    ),
    Case(
        "sample_tables_over_other_files",
        ["sample", "{d}/model", "-o", "{d}/out"],
        "holds other things than tables",
        {"model": model("hma"), "out": folder({}), "out/notes.txt": text("keep me\n")},
    ),
    Case(
        "sample_output_is_the_model",
        ["sample", "{d}/model.zip", "-o", "{d}/model.zip"],
        "also an input",
        {"model.zip": model("copula_zip")},
    ),
    Case(
        "sql_table_name_traversal",
        ["fit", "--sql", "duckdb:///{d}/db.duckdb", "-o", "{d}/model", "-q"],
        "cannot be a file name",
        {"db.duckdb": duckdb_schema({"../../ESCAPED_patients": table(40)})},
        needs="duckdb",
    ),
    # ---- model bundles: damaged or tampered
    Case("model_missing", _SAMPLE, "does not exist"),
    Case("model_is_not_a_bundle", _SAMPLE, "not a clinsynth model", {"model": folder({})}),
    Case(
        "model_manifest_not_json",
        _SAMPLE,
        "manifest.json is not valid JSON",
        {"model": model("copula", lambda b: (b / "manifest.json").write_text("{"))},
    ),
    Case(
        "model_future_format",
        _SAMPLE,
        "Upgrade clinsynth",
        {"model": model("copula", edit_json("manifest.json", _set(["format_version"], 99)))},
    ),
    Case(
        "model_trillion_training_rows",
        ["sample", "{d}/model", "-o", "{d}/out.csv"],
        "num_training_rows must be an integer",
        {
            "model": model(
                "copula", edit_json("manifest.json", _set(["fit", "num_training_rows"], 10**12))
            )
        },
    ),
    Case(
        "model_table_name_traversal",
        ["sample", "{d}/model", "-o", "{d}/out"],
        "without path separators",
        {"model": model("hma", edit_json("manifest.json", _rename_table))},
    ),
    Case(
        "model_10mb_string",
        _SAMPLE,
        r"\(10,000,0\d\d characters\)",
        {
            "model": model(
                "copula", edit_json("manifest.json", _set(["clinsynth_version"], "9" * 10**7))
            )
        },
    ),
    Case(
        "model_json_nested_deep",
        _SAMPLE,
        "nested deeper than",
        {
            "model": model(
                "copula",
                lambda b: (b / "model.json").write_text("[" * 200_000 + "]" * 200_000),
            )
        },
    ),
    Case(
        "model_manifest_nested_deep",
        _SAMPLE,
        "nested deeper than",
        {
            "model": model(
                "copula",
                lambda b: (b / "manifest.json").write_text("[" * 200_000 + "]" * 200_000),
            )
        },
    ),
    Case(
        "model_unknown_parameter",
        _SAMPLE,
        "corrupt",
        {"model": model("copula", edit_json("manifest.json", _set(["params", "bogus"], 1)))},
    ),
    Case(
        "model_transformer_huge_modes",
        _SAMPLE,
        "max_modes must be an integer",
        {
            "model": model(
                "tvae", edit_json("transformer.json", _set(["options", "max_modes"], 10**9))
            )
        },
    ),
    Case(
        "model_transformer_bad_dtype",
        _SAMPLE,
        "dtype name",
        {
            "model": model(
                "copula",
                edit_json("transformer.json", _set(["columns", 0, "state", "dtype"], "V999999999")),
            )
        },
    ),
    Case(
        "model_transformer_lengths",
        _SAMPLE,
        "same length",
        {
            "model": model(
                "copula",
                edit_json("transformer.json", _set(["columns", 2, "state", "frequencies"], [1.0])),
            )
        },
    ),
    Case(
        "model_copula_correlation_wrong_size",
        _SAMPLE,
        r"has shape \(7, 7\)",
        {"model": model("copula", edit_tensors(_wrong_correlation))},
    ),
    Case(
        "model_copula_not_a_correlation",
        _SAMPLE,
        "not a correlation matrix",
        {"model": model("copula", edit_tensors(_not_a_correlation))},
    ),
    Case(
        "model_copula_marginal_count",
        _SAMPLE,
        "marginals for the transformer",
        {
            "model": model(
                "copula",
                edit_json("model.json", lambda d: d["copulas"][0]["marginals"].pop()),
            )
        },
    ),
    Case(
        "model_copula_missing_correlation",
        _SAMPLE,
        "is missing",
        {"model": model("copula", edit_tensors(lambda t: t.pop("correlation_0")))},
    ),
    Case(
        "model_weights_wrong_shape",
        _SAMPLE,
        "has shape",
        {"model": model("tvae", edit_tensors(_first_weight(_wrong_shape)))},
    ),
    Case(
        "model_weights_missing",
        _SAMPLE,
        "missing",
        {"model": model("tvae", edit_tensors(_first_weight(_drop)))},
    ),
    Case(
        "model_weights_huge",
        _SAMPLE,
        "has shape",
        {"model": model("tvae", edit_tensors(_first_weight(_huge)))},
    ),
    Case(
        "model_weights_not_finite",
        _SAMPLE,
        "finite",
        {"model": model("tvae", edit_tensors(_first_weight(_nan)))},
    ),
    Case(
        "model_weights_file_missing",
        _SAMPLE,
        "history.batch",
        {"model": model("tvae", lambda b: (b / "weights.pt").unlink())},
    ),
    Case(
        "model_huge_network_size",
        _SAMPLE,
        "do not match the model's parameters|has shape",
        {
            "model": model(
                "tvae", edit_json("manifest.json", _set(["params", "embedding_dim"], 10**9))
            )
        },
    ),
    Case(
        "model_negative_network_size",
        _SAMPLE,
        "embedding_dim",
        {"model": model("tvae", edit_json("manifest.json", _set(["params", "embedding_dim"], -5)))},
    ),
    Case(
        "model_weights_truncated",
        _SAMPLE,
        "could not be read safely",
        {"model": model("tvae", truncate(0.5))},
    ),
    Case(
        "model_weights_garbage",
        _SAMPLE,
        "could not be read safely",
        {"model": model("tvae", lambda b: (b / "weights.pt").write_bytes(b"\x80\x04garbage"))},
    ),
    Case(
        "model_dp_marginal_tree",
        _SAMPLE,
        "tree",
        {
            "model": model(
                "dp_marginal", edit_json("model.json", _set(["tree", "order"], [0, 0, 0]))
            )
        },
    ),
    Case(
        "model_zip_truncated",
        ["sample", "{d}/model.zip", "-n", "5", "-o", "{d}/out.csv"],
        "damaged, truncated",
        {"model.zip": model("copula_zip", truncate(0.6))},
    ),
    Case(
        "model_zip_traversal_member",
        ["sample", "{d}/model.zip", "-n", "5", "-o", "{d}/out.csv"],
        "plain file names only",
        {"model.zip": model("copula_zip", zip_member("../../evil.json", b"{}"))},
    ),
    Case(
        "model_zip_bomb",
        ["info", "{d}/model.zip"],
        "zip bomb",
        {"model.zip": model("copula_zip", zip_bomb())},
    ),
    Case(
        "model_zip_declares_huge_member",
        ["info", "{d}/model.zip"],
        "would inflate to|more than the",
        {"model.zip": model("copula_zip", declare_size("weights.pt", 3_500_000_000))},
    ),
    Case(
        "model_zip_misdeclared_size",
        ["info", "{d}/model.zip"],
        "damaged, truncated|misdeclared",
        {"model.zip": model("copula_zip", declare_size("manifest.json", 10))},
    ),
]


# ---- longitudinal tables (the sequential model): one line each, nothing written
def visits(change: str = "") -> pd.DataFrame:
    """Three patients' visits; ``change``: ties, one_each, no_time."""
    df = pd.DataFrame(
        {
            "pid": ["a", "a", "a", "b", "b", "c", "c"],
            "day": [0, 30, 90, 0, 45, 0, 20],
            "sbp": [120, 125, 118, 140, 135, 110, 112],
        }
    )
    if change == "ties":
        df.loc[2, "day"] = 30
    elif change == "one_each":
        df = df.drop_duplicates("pid")
    elif change == "no_time":
        df["day"] = df["day"].astype(object)
        df.loc[1, "day"] = "unknown"
    return df


_SEQ = ("--sequence-key", "pid", "--sequence-index", "day")
CASES += [
    Case(
        "sequence_index_ties",
        _fit("{d}/data.csv", *_SEQ),
        "has ties: 2 rows of 1 patients",
        {"data.csv": frame(lambda: visits("ties"))},
    ),
    Case(
        "sequence_one_event_each",
        _fit("{d}/data.csv", *_SEQ),
        "exactly one event",
        {"data.csv": frame(lambda: visits("one_each"))},
    ),
    Case(
        "sequence_index_not_a_time",
        _fit("{d}/data.csv", *_SEQ),
        "sequence_index 'day' has sdtype 'categorical'",
        {"data.csv": frame(lambda: visits("no_time"))},
    ),
    Case(
        "sequence_key_not_a_column",
        _fit("{d}/data.csv", "--sequence-key", "patient", "--sequence-index", "day"),
        "sequence_key 'patient' is not a column",
        {"data.csv": frame(visits)},
    ),
]


def build(root: Path, cases: list[Case] | None = None) -> dict[str, Path]:
    """Write every case's files under ``root/<case name>/``; return the case folders."""
    models = Models(root)
    folders = {}
    for case in cases or CASES:
        where = root / case.name
        where.mkdir(parents=True)
        for relative, writer in case.files.items():
            writer(where / relative, models)
        (where / "ARGS").write_text(" ".join(case.command(where)) + "\n")
        folders[case.name] = where
    return folders


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")
    made = build(out)
    print(f"{len(made)} cases written to {out}/ (each with its command line in ARGS)")
