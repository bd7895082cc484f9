import json

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.errors import DataError, MetadataError


def test_json_round_trip(tmp_path, mixed_metadata):
    path = tmp_path / "metadata.json"
    mixed_metadata.save_to_json(path)
    loaded = Metadata.load_from_json(path)
    assert loaded == mixed_metadata
    assert loaded.columns["stage"] == {"sdtype": "ordinal", "order": ["I", "II", "III", "IV"]}
    assert json.loads(path.read_text())["METADATA_SPEC_VERSION"] == "V1"


def test_reads_sdv_single_table_json(tmp_path):
    sdv = {
        "METADATA_SPEC_VERSION": "SINGLE_TABLE_V1",
        "primary_key": "guest_email",
        "columns": {
            "guest_email": {"sdtype": "email", "pii": True},
            "has_rewards": {"sdtype": "boolean"},
            "room_type": {"sdtype": "categorical"},
            "nyha": {"sdtype": "categorical", "order": ["I", "II", "III", "IV"]},
            "checkin_date": {"sdtype": "datetime", "datetime_format": "%d %b %Y"},
            "amenities_fee": {"sdtype": "numerical", "computer_representation": "Float"},
            "credit_card_number": {"sdtype": "credit_card_number", "pii": True},
        },
        "column_relationships": [],
    }
    path = tmp_path / "sdv.json"
    path.write_text(json.dumps(sdv))
    md = Metadata.load_from_json(path)
    md.validate()
    assert md.primary_key == "guest_email"
    assert md.columns["nyha"]["sdtype"] == "ordinal"
    assert md.columns["checkin_date"]["datetime_format"] == "%d %b %Y"
    assert md.get_table().pii_columns == ["guest_email", "credit_card_number"]


def test_reads_sdv_multi_table_json(tmp_path):
    sdv = {
        "METADATA_SPEC_VERSION": "V1",
        "tables": {
            "hotels": {
                "primary_key": "hotel_id",
                "columns": {
                    "hotel_id": {"sdtype": "id", "regex_format": "HID_[0-9]{3}"},
                    "city": {"sdtype": "categorical"},
                },
            },
            "guests": {
                "primary_key": "guest_email",
                "columns": {
                    "guest_email": {"sdtype": "email"},
                    "hotel_id": {"sdtype": "id", "regex_format": "HID_[0-9]{3}"},
                },
            },
        },
        "relationships": [
            {
                "parent_table_name": "hotels",
                "parent_primary_key": "hotel_id",
                "child_table_name": "guests",
                "child_foreign_key": "hotel_id",
            }
        ],
    }
    path = tmp_path / "sdv_multi.json"
    path.write_text(json.dumps(sdv))
    md = Metadata.load_from_json(path)
    md.validate()
    assert md.table_names == ["hotels", "guests"]
    assert md.relationships[0]["child_foreign_key"] == "hotel_id"
    with pytest.raises(MetadataError, match="2 tables"):
        _ = md.columns


def test_validate_collects_every_problem():
    md = Metadata.from_dict(
        {
            "columns": {
                "a": {"sdtype": "numerical", "computer_representation": "Double"},
                "b": {"sdtype": "unknown"},
                "c": {"sdtype": "datetime", "datetime_format": "YYYY-MM-DD"},
            },
            "primary_key": "zzz",
        }
    )
    with pytest.raises(MetadataError) as info:
        md.validate()
    assert len(info.value.problems) == 4
    text = str(info.value)
    assert "'a'" in text and "Double" in text
    assert "column 'b'" in text and "Drop the column" in text
    assert "primary key 'zzz'" in text


def test_validate_finds_relationship_cycle():
    md = Metadata.from_dict(
        {
            "tables": {
                "a": {
                    "columns": {"id": {"sdtype": "id"}, "b_id": {"sdtype": "id"}},
                    "primary_key": "id",
                },
                "b": {
                    "columns": {"id": {"sdtype": "id"}, "a_id": {"sdtype": "id"}},
                    "primary_key": "id",
                },
            },
            "relationships": [
                {
                    "parent_table_name": "a",
                    "parent_primary_key": "id",
                    "child_table_name": "b",
                    "child_foreign_key": "a_id",
                },
                {
                    "parent_table_name": "b",
                    "parent_primary_key": "id",
                    "child_table_name": "a",
                    "child_foreign_key": "b_id",
                },
            ],
        }
    )
    with pytest.raises(MetadataError, match="cycle"):
        md.validate()


def test_validate_data_reports_all_problems_at_once(mixed_df, mixed_metadata):
    bad = mixed_df.drop(columns=["sex"]).assign(extra=1)
    bad["age"] = bad["age"].astype(object)
    bad.loc[12, "age"] = "unknown"
    bad.loc[3, "pid"] = bad.loc[2, "pid"]
    with pytest.raises(DataError) as info:
        mixed_metadata.validate_data(bad)
    text = str(info.value)
    assert len(info.value.problems) == 4
    assert "['sex']" in text and "['extra']" in text
    assert "Column 'age'" in text or "column 'age'" in text
    assert "'unknown' in row 13" in text
    assert "primary key 'pid' has 1 duplicated values" in text


def test_validate_data_accepts_valid_data_and_notes_constant(mixed_df, mixed_metadata):
    df = mixed_df.assign(code=1)
    notes = mixed_metadata.validate_data(df)
    assert any("constant" in n and "'code'" in n for n in notes)


def test_editing(mixed_metadata):
    md = mixed_metadata.copy()
    md.update_column("code", sdtype="ordinal", order=[0, 1, 2])
    assert md.columns["code"] == {"sdtype": "ordinal", "order": [0, 1, 2]}
    md.set_primary_key(None)
    md.remove_column("name")
    md.add_column("note", sdtype="text")
    md.set_column_groups({"clinical": ["age", "sbp"], "demographic": ["sex"]})
    md.validate()
    with pytest.raises(MetadataError, match="not in table"):
        md.update_column("nope", sdtype="numerical")
    with pytest.raises(MetadataError, match="already exists"):
        md.add_column("age", sdtype="numerical")


def test_column_group_must_name_real_columns(mixed_metadata):
    md = mixed_metadata.copy()
    md.set_column_groups({"genetic": ["rs123"]})
    with pytest.raises(MetadataError, match="rs123"):
        md.validate()


def test_bad_json_file_names_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(MetadataError, match="broken.json"):
        Metadata.load_from_json(path)
    path.write_text(json.dumps({"foo": 1}))
    with pytest.raises(MetadataError, match="neither 'tables'"):
        Metadata.load_from_json(path)


def test_validate_data_multi_table_reports_orphans():
    md = Metadata.from_dict(
        {
            "tables": {
                "patients": {"columns": {"pid": {"sdtype": "id"}}, "primary_key": "pid"},
                "visits": {
                    "columns": {"vid": {"sdtype": "id"}, "pid": {"sdtype": "id"}},
                    "primary_key": "vid",
                },
            },
            "relationships": [
                {
                    "parent_table_name": "patients",
                    "parent_primary_key": "pid",
                    "child_table_name": "visits",
                    "child_foreign_key": "pid",
                }
            ],
        }
    )
    tables = {
        "patients": pd.DataFrame({"pid": [1, 2, 3]}),
        "visits": pd.DataFrame({"vid": np.arange(5), "pid": [1, 1, 2, 9, 9]}),
    }
    with pytest.raises(DataError, match="2 of 5 rows point to no row"):
        md.validate_data(tables)
