"""The model's privacy budget travels into the evaluation report (JSON and HTML)."""

import pandas as pd

from clinsynth import DPMarginalSynthesizer, GaussianCopulaSynthesizer
from clinsynth.evaluation import evaluate
from clinsynth.simulate import simulate_cohort


def test_budget_of_a_dp_model_is_in_the_report(tmp_path):
    df, md = simulate_cohort(400, seed=0)
    model = DPMarginalSynthesizer(md, epsilon=3.0, random_state=0).fit(df)
    result = evaluate(df, model.sample(400), md, model=model, detection=False)
    privacy = result.to_dict()["info"]["model"]["privacy"]
    assert privacy["differential_privacy"] is True
    assert abs(privacy["epsilon"] - 3.0) < 1e-9
    result.save_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "Formal guarantee (differential privacy)" in html and "epsilon" in html


def test_a_model_without_dp_says_so(tmp_path):
    df, md = simulate_cohort(300, seed=1)
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    result = evaluate(df, model.sample(300), md, model=model, detection=False)
    result.save_html(tmp_path / "r.html")
    assert "there is no formal guarantee" in (tmp_path / "r.html").read_text()
    assert isinstance(result.summary(), pd.DataFrame)
