"""Signatures read off data and models, and frames checked or converted against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from conveyor.errors import ValidationError
from conveyor.registry.packaging import (
    ColumnSpec,
    Signature,
    infer_signature,
    load_folder,
    save_model,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27, 60], dtype="int64"),
            "income": [52.5, np.nan, 38.0, 71.2],
            "member": [True, False, True, True],
            "city": ["oslo", "lima", "oslo", "pune"],
            "plan": pd.Categorical(["gold", "basic", "basic", "gold"], categories=["basic", "gold", "platinum"]),
            "joined": pd.to_datetime(["2020-01-05", "2021-03-01", "2019-07-19", "2022-11-30"]),
        }
    )


@pytest.fixture
def signature(frame: pd.DataFrame) -> Signature:
    return infer_signature(frame)


def _spec(signature: Signature, name: str) -> ColumnSpec:
    return next(spec for spec in signature.inputs if spec.name == name)


def test_inference_reads_types_nullability_and_levels(signature: Signature, frame: pd.DataFrame) -> None:
    described = {spec.name: (spec.type, spec.dtype, spec.nullable, spec.levels) for spec in signature.inputs}
    assert described == {
        "age": ("integer", "int64", False, None),
        "income": ("float", "float64", True, None),
        "member": ("boolean", "bool", False, None),
        "city": ("string", str(frame["city"].dtype), False, ["lima", "oslo", "pune"]),
        "plan": ("category", "category", False, ["basic", "gold", "platinum"]),
        "joined": ("datetime", str(frame["joined"].dtype), False, None),
    }
    assert signature.outputs is None


def test_string_levels_are_kept_only_up_to_max_levels(frame: pd.DataFrame) -> None:
    assert _spec(infer_signature(frame, max_levels=2), "city").levels is None
    assert _spec(infer_signature(frame, max_levels=2), "plan").levels == ["basic", "gold", "platinum"]


def test_outputs_come_from_the_classifier_and_the_target_name() -> None:
    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    target = pd.Series(np.array([3, 3, 7, 7, 9, 9], dtype="int64"), name="grade")
    outputs = infer_signature(data, target, model=LogisticRegression().fit(data, target)).outputs

    assert outputs.model_dump() == {"name": "grade", "kind": "classification", "classes": [3, 7, 9], "probabilities": True}
    assert all(type(label) is int for label in outputs.classes)


def test_outputs_of_a_regressor_and_of_a_bare_target() -> None:
    data = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    regressor = LinearRegression().fit(data, [0.5, 1.5, 2.5])
    assert infer_signature(data, model=regressor).outputs.kind == "regression"
    assert infer_signature(data, pd.Series([1.5, 2.5, 0.1], name="price")).outputs.model_dump() == {
        "name": "price", "kind": "regression", "classes": None, "probabilities": False
    }
    assert infer_signature(data, np.array(["no", "yes", "no"])).outputs.classes == ["no", "yes"]


def test_unsupported_columns_are_refused_naming_them() -> None:
    with pytest.raises(ValidationError, match="column 'wait' has dtype timedelta64") as caught:
        infer_signature(pd.DataFrame({"wait": pd.to_timedelta([1, 2], unit="s")}))
    assert caught.value.field == "wait"


def test_a_matching_frame_passes_unchanged(signature: Signature, frame: pd.DataFrame) -> None:
    checked = signature.validate_frame(frame)

    assert checked is not frame
    pd.testing.assert_frame_equal(checked, frame)


def test_extra_columns_are_dropped_and_order_restored(signature: Signature, frame: pd.DataFrame) -> None:
    shuffled = frame[["plan", "joined", "city", "member", "income", "age"]].assign(note="ignored")

    checked = signature.validate_frame(shuffled)

    assert list(checked.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(checked, frame)


def test_missing_columns_are_listed_together(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="lacks column\\(s\\) 'age', 'city'") as caught:
        signature.validate_frame(frame.drop(columns=["city", "age"]))
    assert caught.value.field == "age"


def test_a_wrong_type_is_refused_naming_the_column(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="column 'age' has string values .* expects integer") as caught:
        signature.validate_frame(frame.assign(age=["31", "45", "27", "60"]))
    assert caught.value.field == "age"


def test_a_lossy_cast_is_refused_even_in_coerce_mode(signature: Signature, frame: pd.DataFrame) -> None:
    narrowed = Signature(inputs=[_spec(signature, "age").model_copy(update={"dtype": "int32"})])
    with pytest.raises(ValidationError, match="could lose values") as caught:
        narrowed.validate_frame(frame, mode="coerce")
    assert caught.value.field == "age"


def test_missing_values_in_a_non_nullable_column_are_counted(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="column 'city' has 2 missing value\\(s\\)") as caught:
        signature.validate_frame(frame.assign(city=["oslo", None, None, "lima"]))
    assert caught.value.field == "city"


def test_missing_values_pass_in_a_nullable_column(signature: Signature, frame: pd.DataFrame) -> None:
    checked = signature.validate_frame(frame.assign(income=np.nan))
    assert checked["income"].isna().all()


def test_unseen_categories_are_refused_with_examples(signature: Signature, frame: pd.DataFrame) -> None:
    unseen = frame.assign(plan=pd.Categorical(["gold", "diamond", "basic", "diamond"]))
    with pytest.raises(ValidationError, match="column 'plan' has 2 value\\(s\\) outside .* e.g. 'diamond'") as caught:
        signature.validate_frame(unseen)
    assert caught.value.field == "plan"


def test_unseen_strings_are_refused_where_levels_are_known(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="column 'city' has 1 value\\(s\\) outside .* e.g. 'rome'") as caught:
        signature.validate_frame(frame.assign(city=["oslo", "rome", "lima", "pune"]))
    assert caught.value.field == "city"

    open_ended = infer_signature(frame, max_levels=2)
    assert open_ended.validate_frame(frame.assign(city="rome"))["city"].tolist() == ["rome"] * 4


@pytest.mark.parametrize("copies", [1, 100], ids=["online-rows", "batch-rows"])
def test_unseen_strings_are_refused_on_small_and_large_frames(
    signature: Signature, frame: pd.DataFrame, copies: int
) -> None:
    many = pd.concat([frame] * copies, ignore_index=True)
    many.loc[len(many) - 1, "city"] = "rome"
    with pytest.raises(ValidationError, match="column 'city' has 1 value\\(s\\) outside .* e.g. 'rome'"):
        signature.validate_frame(many)
    assert signature.validate_frame(pd.concat([frame] * copies))["city"].tolist() == frame["city"].tolist() * copies


def test_lossless_widening_is_accepted_in_error_mode(signature: Signature, frame: pd.DataFrame) -> None:
    narrow = frame.astype({"age": "int32", "income": "float32", "city": object})
    narrow["plan"] = frame["plan"].astype(str)

    checked = signature.validate_frame(narrow)

    assert checked.dtypes.tolist() == frame.dtypes.tolist()
    assert checked["plan"].tolist() == frame["plan"].tolist()
    assert checked["age"].tolist() == frame["age"].tolist()


def test_error_mode_refuses_int_for_float_and_points_at_coerce(frame: pd.DataFrame) -> None:
    signature = infer_signature(frame.assign(income=[52.5, 40.0, 38.0, 71.2]))
    with pytest.raises(ValidationError, match="pass schema mode 'coerce'") as caught:
        signature.validate_frame(frame.assign(income=[52, 40, 38, 71]))
    assert caught.value.field == "income"


def test_coerce_mode_casts_safely(signature: Signature, frame: pd.DataFrame) -> None:
    loose = frame.assign(
        income=[52, 40, 38, 71],
        joined=["2020-01-05", "2021-03-01", "2019-07-19", "2022-11-30"],
        plan=["gold", "basic", "basic", "gold"],
    )

    checked = signature.validate_frame(loose, mode="coerce")

    assert checked.dtypes.tolist() == frame.dtypes.tolist()
    assert checked["income"].tolist() == [52.0, 40.0, 38.0, 71.0]
    assert checked["joined"].tolist() == frame["joined"].tolist()


def test_coerce_mode_casts_integral_floats_to_integers_only(signature: Signature, frame: pd.DataFrame) -> None:
    assert signature.validate_frame(frame.assign(age=[31.0, 45.0, 27.0, 60.0]), mode="coerce")["age"].tolist() == [
        31, 45, 27, 60
    ]
    with pytest.raises(ValidationError, match="non-integral values \\(27.5\\)") as caught:
        signature.validate_frame(frame.assign(age=[31.0, 45.0, 27.5, 60.0]), mode="coerce")
    assert caught.value.field == "age"


def test_coerce_mode_still_refuses_text_for_numbers(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="column 'income' has string values") as caught:
        signature.validate_frame(frame.assign(income=["a", "b", "c", "d"]), mode="coerce")
    assert caught.value.field == "income"


def test_an_unknown_mode_is_refused(signature: Signature, frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as caught:
        signature.validate_frame(frame, mode="lenient")  # type: ignore[arg-type]
    assert caught.value.field == "mode"


def test_coerced_frames_predict_like_correctly_typed_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"amount": rng.normal(100, 20, 200), "channel": pd.Categorical(rng.choice(["web", "shop", "phone"], 200))}
    )
    labels = (train["amount"] > 100).astype(int) ^ (train["channel"] == "phone").astype(int)
    encode = ColumnTransformer([("onehot", OneHotEncoder(), ["channel"])], remainder="passthrough")
    model = Pipeline([("encode", encode), ("classify", LogisticRegression())]).fit(train, labels)
    save_model(model, tmp_path / "model", input_example=train)
    typed = train.head(20).assign(amount=lambda f: f["amount"].round().astype(float))
    loose = typed.assign(amount=typed["amount"].astype(int), channel=typed["channel"].astype(str))

    with pytest.raises(ValidationError):
        load_folder(tmp_path / "model").predict(loose)
    loaded = load_folder(tmp_path / "model", schema_mode="coerce")

    assert np.array_equal(loaded.predict_proba(loose), loaded.predict_proba(typed))
    assert np.array_equal(loaded.predict(loose), model.predict(typed))


def test_a_signature_survives_json(signature: Signature, frame: pd.DataFrame) -> None:
    again = Signature.model_validate_json(signature.model_dump_json())
    assert again == signature
    pd.testing.assert_frame_equal(again.validate_frame(frame), frame)


def test_an_example_that_contradicts_the_signature_is_refused(
    tmp_path: Path, signature: Signature, frame: pd.DataFrame
) -> None:
    model = LinearRegression().fit(frame[["age"]], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValidationError) as caught:
        save_model(model, tmp_path / "model", signature=signature, input_example=frame.drop(columns="plan"))
    assert caught.value.field == "plan"
